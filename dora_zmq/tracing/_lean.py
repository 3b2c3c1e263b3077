"""Cheap SDK spans for the message path (see the package docstring)."""

from __future__ import annotations

import atexit
import logging
import os
import re
import threading
import weakref
from collections import deque
from time import time_ns
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation import _SPAN_KEY

from ._context import format_context, parse_context
from ._otlp import _EXPORT_AT, OtlpDirect
from ._setup import _EXPORT_TIMEOUT_S

log = logging.getLogger(__name__)

_SIZE_KEY = "messaging.message.body.size"

_FEED_INTERVAL_S = 0.5  # how often finished spans go to the span processors
_FEED_AT = 1024  # ... or as soon as this many are waiting
_MAX_WAITING = 16384  # beyond this the oldest are dropped (the batch processor drops too when full)
_SPARES = 256  # span ids and blank consumer spans made ahead by the feeding thread (see _refill)

_live: Any = None  # every _LeanSpans, to forget their spares in a forked child


class _LeanSpans:
    """A tracer's spans, as ``tracer.start_span`` makes them with the default sampler, cheaply.

    What ``start_span``/``end`` cost (about 15 µs per span hot, and 10x that when a paced
    message finds the caches cold): asking the sampler, validating the attributes into a
    ``BoundedAttributes``, a lock and bounded lists per span, copying the span into a
    ``ReadableSpan`` at the end and queueing it. Here:

    * the decision of ``ParentBased(ALWAYS_ON)`` is taken inline;
    * a span sets only its own fields; the per-tracer ones are class attributes and the
      containers are made on first use (a user calling ``set_attribute``/``add_event`` on the
      current input span), so attributes are exported from the plain dict when never touched;
    * a consumer span reads its parent from the metadata text only when asked for its context
      (by a child, a send, or at export);
    * a producer span is just the ids and the metadata text while the message waits;
    * finished spans wait in a deque, and a thread takes them every ``_FEED_INTERVAL_S`` (or
      at ``_FEED_AT`` waiting; and on close, and at exit): with the OTLP/HTTP exporter alone
      (what :func:`setup_tracing` makes) it writes them as OTLP protobuf bytes and sends them
      itself (:class:`OtlpDirect`, about 2-3 µs a span instead of about 40 µs through
      ``ReadableSpan`` s, the batch processor and the exporter's encoder: what made a burst
      three times slower with tracing on); otherwise it turns them into the ``ReadableSpan`` s
      the SDK would have made and hands them to the batch processors;
    * that thread also makes, ahead, what the message path would otherwise make per message:
      span ids with their hex text (formatting an int is one of the dearest steps with cold
      caches), blank consumer spans with the ``Context`` holding them, and root contexts for
      inputs without a parent (timer ticks).

    Handing spans over later needs the span processors to be ``BatchSpanProcessor`` s only
    (their ``on_start`` does nothing, and they export later anyway); with any other processor added,
    spans are started and ended through the processors the SDK way. :meth:`create` returns
    None (use ``start_span``) for another sampler, a disabled tracer, the SDK's own span
    metrics on, attribute limits that would change dora's attributes, or an SDK whose span has
    a field this class does not provide (checked against a real SDK span, so an SDK upgrade
    falls back instead of breaking).
    """

    def __init__(self, tracer: Any) -> None:
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

        global _live
        ids = tracer.id_generator
        self._new_trace_id = ids.generate_trace_id
        self._new_span_id = ids.generate_span_id
        # Ids made ahead (by the feeding thread) only with the SDK's generator: another one may
        # not be thread-safe, or may want to be asked when the span starts.
        self._ids_ahead = type(ids) is RandomIdGenerator
        self._ids: list[tuple[int, str]] = []  # (span id, its 16 hex digits), popped from the end
        self._spares: list[tuple[Any, Any]] = []  # (blank consumer span, Context holding it)
        self._roots: list[Any] = []  # (root context, its children's text parts): see _root
        if _live is None:
            _live = weakref.WeakSet()
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_forget_spares)
        _live.add(self)
        self._root_flags = TraceFlags(TraceFlags.SAMPLED | (TraceFlags.RANDOM_TRACE_ID if ids.is_trace_id_random() else 0))
        self._multi = tracer.span_processor
        self._seen: Any = None  # the processors last looked at ...
        self._ends: list[Any] | None = None  # ... and their on_end when all are batch processors
        self._batch: Any = ()  # ... and them again in that case
        self.batch_ends()
        self._format: tuple[Any, Any] = (self, None)  # a span context, and parent_parts of it
        self._waiting: Any = deque(maxlen=_MAX_WAITING)  # finished spans for the processors
        self._drop_warned = 0  # when a full deque may be reported again (time_ns)
        self._span, self._readable = _lean_span_type(tracer, self)
        # With setup_tracing's provider (one batch processor around the OTLP/HTTP exporter) the
        # finished spans are written as OTLP bytes here and sent by this thread, past the
        # ReadableSpans, the batch processor and the exporter's encoder (see _otlp).
        self._direct_procs = self._multi._span_processors
        self._direct = OtlpDirect.create(tracer, self._direct_procs, self._span, self._readable)
        self._feed_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._refill()
        self._feeder = threading.Thread(target=self._feed_loop, name="dora-otel-spans", daemon=True)
        self._feeder.start()
        atexit.register(self.feed, True)

    @classmethod
    def create(cls, tracer: Any) -> _LeanSpans | None:
        try:
            from opentelemetry.sdk.trace import Tracer, _Span, sampling

            if not isinstance(tracer, Tracer) or tracer.sampler is not sampling.DEFAULT_ON or not tracer._is_enabled():
                return None
            if type(tracer._tracer_metrics).__name__ != "NoOpTracerMetrics":
                return None
            limits = tracer._span_limits
            if limits.max_span_attribute_length is not None or (limits.max_span_attributes is not None and limits.max_span_attributes < 8):
                return None
            spans = cls(tracer)
            if not set(vars(_Span("layout", SpanContext(1, 1, False)))) <= spans._span._dora_fields:
                spans.close()
                return None
            return spans
        except Exception:  # an SDK this does not know: the plain way still works
            log.debug("lean spans unavailable", exc_info=True)
            return None

    def batch_ends(self) -> list[Any] | None:
        """The processors' ``on_end`` if all are ``BatchSpanProcessor`` s, else None."""
        procs = self._multi._span_processors
        if procs is not self._seen:
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            self._seen = procs
            batch = all(type(p) is BatchSpanProcessor for p in procs)
            self._ends = [p.on_end for p in procs] if batch else None
            self._batch = procs if batch else ()  # what the fast paths compare with
        return self._ends

    def new_context(self, parent: SpanContext | None, span_id: int | None = None) -> tuple[SpanContext, SpanContext | None]:
        """A new span's context and its parent (None for a root), as start_span decides them.

        ``span_id``: the span's id if it was given one already (see ``LeanSpan.dora_plain_ids``).
        """
        if parent is not None and parent.is_valid:
            flags = parent.trace_flags & (TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
            return SpanContext(parent.trace_id, span_id or self._new_span_id(), False, TraceFlags(flags), parent.trace_state), parent
        trace_id = self._new_trace_id()
        return SpanContext(trace_id, span_id or self._new_span_id(), False, self._root_flags), None

    def start(
        self, name: str, kind: SpanKind, parent: SpanContext | None, attrs: dict[str, Any], links: tuple[Link, ...] = (),
        size: int | None = None,
    ) -> Any:
        """What ``tracer.start_span(name, <parent>, kind, attrs (+ the size, if given), links)`` returns."""
        context, parent = self.new_context(parent)
        if not context.trace_flags.sampled:
            return trace.NonRecordingSpan(context)
        span = self._span.started(name, kind, attrs, context, parent, links)
        if size is not None:
            span._dora_size = size
        if self.batch_ends() is None:
            parent_context = trace.set_span_in_context(trace.NonRecordingSpan(parent)) if parent is not None else otel_context.Context()
            self._multi.on_start(span, parent_context=parent_context)
        return span

    def consume(self, name: str, text: Any, attrs: dict[str, Any], size: int | None = None) -> Any:
        """A started consumer span, child of the context in ``text``.

        Its attributes are ``attrs`` plus the message size if ``size`` is given: ``attrs`` is
        then shared (the per-input ones), and the span's own dict is made only at export.
        """
        if self._multi._span_processors is not self._batch and self.batch_ends() is None:
            if size is not None:
                attrs = attrs.copy()
                attrs[_SIZE_KEY] = size
            return self.start(name, SpanKind.CONSUMER, parse_context(text), attrs)
        return self._span(name, attrs, size, text)  # its context is worked out when needed

    def produce(self, name: str, attrs: dict[str, Any], size: int, parent: Any, links: tuple[Link, ...]) -> str:
        """Start and end a producer span (attributes ``attrs`` + the size); its metadata text.

        ``parent``: a span, a span context, or None (a root: a new trace).
        """
        if links or (self._multi._span_processors is not self._batch and self.batch_ends() is None):
            if parent is not None and not isinstance(parent, SpanContext):
                parent = parent.get_span_context()
            span = self.start(name, SpanKind.PRODUCER, parent, attrs, links, size)  # (attrs stay the output's)
            span.end()
            return format_context(span.get_span_context())
        ids = self._ids
        try:
            span_id, hex_id = ids.pop() if ids else self.new_id()
        except IndexError:  # another thread took the last one
            span_id, hex_id = self.new_id()
        parts = self.parent_parts(parent)
        if parts is None:  # a root: a new trace each time
            trace_id = self._new_trace_id()
            flags = self._root_flags
            if flags & TraceFlags.SAMPLED:
                now = time_ns()
                self.finished((name, attrs, size, span_id, None, now, time_ns(), trace_id, flags))
            return f"traceparent:00-{trace_id:032x}-{hex_id}-{flags:02x}"
        source, prefix, suffix, sampled = parts
        if sampled:
            now = time_ns()
            self.finished((name, attrs, size, span_id, source, now, time_ns(), None, None))
        return prefix + hex_id + suffix

    def new_id(self) -> tuple[int, str]:
        """A span id and its 16 hex digits, made now (none made ahead: a burst, or another generator)."""
        span_id = self._new_span_id()
        return span_id, f"{span_id:016x}"

    def parent_parts(self, parent: Any) -> tuple[Any, str, str, int] | None:
        """What the children of ``parent`` need while the message waits, or None for a root.

        ``(parent for the export, text prefix, text suffix, sampled)``: the text of a child
        is ``prefix + its span id in hex + suffix``. ``parent`` is a span or a span context;
        for a consumer span of this node, the parts come from the metadata text it was made
        from (or were made ahead with its context), so its context is worked out at export.
        """
        if type(parent) is self._span:
            parts = parent._dora_parts or _child_text_parts(parent._dora_text)
            if parts is not None:
                return (parent, *parts)
            parent = parent.get_span_context()
        elif parent is not None and not isinstance(parent, SpanContext):
            parent = parent.get_span_context()
        if parent is None or not parent.is_valid:
            return None
        last, parts = self._format  # the parts of the last span context asked about
        if parent is not last:
            flags = parent.trace_flags & (TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
            state = parent.trace_state
            suffix = f"-{flags:02x}" + ("\ntracestate:" + state.to_header() if state else "")
            parts = (parent, f"traceparent:00-{parent.trace_id:032x}-", suffix, flags & TraceFlags.SAMPLED)
            self._format = (parent, parts)
        return parts

    def finished(self, span: Any) -> None:
        """A finished span (or a producer span's fields) for the processors, soon."""
        waiting = self._waiting
        waiting.append(span)
        if len(waiting) == _FEED_AT:
            self._wake.set()

    def feed(self, flush: bool = False) -> None:
        """Hand every finished span waiting to the exporter (``flush``: send all now).

        Written as OTLP bytes and sent in requests of up to 4096 spans, at least every second
        (:class:`OtlpDirect`), or else handed to the span processors as ``ReadableSpan`` s.
        """
        with self._feed_lock:
            waiting, readable = self._waiting, self._readable
            if len(waiting) >= _MAX_WAITING and time_ns() >= self._drop_warned:
                # The deque dropped its oldest (the message path does not count, to stay cheap).
                log.warning("tracing: more than %d spans were waiting for export; the oldest were dropped", _MAX_WAITING)
                self._drop_warned = time_ns() + 30 * 10**9  # at most one warning per 30 s
            direct = self._direct
            if direct is not None and self._multi._span_processors is not self._direct_procs:
                direct.send()  # processors were added: from now on they get every span
                direct = self._direct = None
            while waiting:
                try:
                    finished = waiting.popleft()
                except IndexError:
                    break
                try:
                    if direct is not None:
                        direct.add(finished)
                        if direct.pending() >= _EXPORT_AT:
                            direct.send()
                        continue
                    span = readable(finished)
                    if span is not None:
                        ends = self.batch_ends()
                        if ends is None:
                            self._multi.on_end(span)
                        else:
                            for on_end in ends:
                                on_end(span)
                except Exception:  # one bad span must not stop the others, but it must show
                    log.warning("could not export a span", exc_info=True)
            if direct is not None and (flush or direct.due()):
                direct.send()

    def _refill(self) -> None:
        """Make span ids, root contexts and blank consumer spans ahead, up to ``_SPARES`` of each.

        Made here, off the message path, so that a message only pops them. A burst empties
        the lists; the message path then makes its own (with warm caches, it is cheap). Root
        contexts (1.3 µs each) are a list of their own, taken only by inputs without a parent
        (timer ticks): a burst of traced messages uses none, so none are made again.
        """
        if self._ids_ahead:
            ids, new_id = self._ids, self.new_id
            for _ in range(_SPARES - len(ids)):
                ids.append(new_id())
            roots, root = self._roots, self._root
            for _ in range(_SPARES - len(roots)):
                roots.append(root())
        spares, blank = self._spares, self._span.blank
        for _ in range(_SPARES - len(spares)):
            span = blank()
            spares.append((span, Context({_SPAN_KEY: span})))

    def _root(self) -> tuple[SpanContext, tuple[str, str, int]] | None:
        """A root span's context (what ``new_context(None)`` makes) and its children's text parts.

        None with another id generator than the SDK's: its ids are asked for when needed.
        """
        if not self._ids_ahead:
            return None
        context = SpanContext(self._new_trace_id(), self._new_span_id(), False, self._root_flags)
        flags = self._root_flags & (TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
        return context, (f"traceparent:00-{context.trace_id:032x}-", f"-{flags:02x}", flags & TraceFlags.SAMPLED)

    def _feed_loop(self) -> None:
        while not self._closed:
            self._wake.wait(_FEED_INTERVAL_S)
            self._wake.clear()
            self.feed()
            try:
                self._refill()
            except Exception:  # the message path makes its own then
                log.warning("could not make spans ahead", exc_info=True)

    def close(self) -> None:
        """Stop the feeding thread, after handing over what waits."""
        self._closed = True
        self._wake.set()
        self._feeder.join(_EXPORT_TIMEOUT_S)
        self.feed(True)


_PLAIN = re.compile(r"traceparent:00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
_SUFFIXES = ("-00", "-01", "-02", "-03")
_CHILD_FLAGS = int(TraceFlags.SAMPLED | getattr(TraceFlags, "RANDOM_TRACE_ID", 0))  # what a child keeps


def _child_text_parts(text: Any) -> tuple[str, str, int] | None:
    """The text parts of the children of the consumer span made from metadata ``text``.

    Read from the text itself when it is the plain form (``traceparent:00-<32 hex>-<16 hex>-
    <2 hex>``, lower case, what dora_zmq writes without a trace state); otherwise None, and the
    parts come from the span's context. The same as parse_context + new_context + the parts of
    that: same trace id, flags masked to sampled and random, no trace state.
    """
    match = _PLAIN.fullmatch(text) if type(text) is str else None
    if match is None:
        return None
    trace_id, span_id, flags = match.groups()
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None  # an all-zero (invalid) id: parse_context decides
    flags_value = int(flags, 16) & _CHILD_FLAGS
    return text[:48], _SUFFIXES[flags_value], flags_value & 1


def _forget_spares() -> None:
    """In a forked child: ids made ahead would repeat the parent's (as ``random`` reseeds)."""
    for spans in list(_live or ()):
        spans._ids.clear()
        spans._roots.clear()
        spans._spares.clear()
        direct = getattr(spans, "_direct", None)
        if direct is not None:
            direct.forget()  # the parent sends those


def _lean_span_type(tracer: Any, spans: _LeanSpans) -> tuple[type, Any]:
    """The span class of :class:`_LeanSpans` for ``tracer``, and its ``ReadableSpan`` maker."""
    from opentelemetry.attributes import BoundedAttributes
    from opentelemetry.sdk.trace import ReadableSpan, Span
    from opentelemetry.sdk.util import BoundedList
    from opentelemetry.trace.status import Status, StatusCode

    limits = tracer._span_limits
    resource, scope, info = tracer.resource, tracer._instrumentation_scope, tracer.instrumentation_info
    unset = Status(StatusCode.UNSET)
    sdk_log = logging.getLogger("opentelemetry.sdk.trace")
    producer = SpanKind.PRODUCER
    resolving = threading.Lock()
    new_span_id = spans._new_span_id

    class LeanSpan(Span):
        """An SDK span, made and ended cheaply (see :class:`_LeanSpans`)."""

        _resource = resource
        _instrumentation_info = info
        _instrumentation_scope = scope
        _span_processor = tracer.span_processor
        _limits = limits
        _sampler = tracer.sampler
        _trace_config = None
        _record_exception = True
        _set_status_on_exception = True
        _status = unset
        _end_time = None
        _record_end_metrics = None
        _kind = SpanKind.CONSUMER  # what the message path makes; started() sets its own
        _dora_size = None  # the message size attribute, when not in _dora_attributes yet
        _dora_touched = False  # True once a lock or attribute/event/link list was made for it
        _dora_text = None  # the metadata text of its parent (a consumer span's)
        _dora_parts = None  # its children's text parts, when made ahead (see parent_parts)

        def __init__(self, name: str, attributes: dict[str, Any], size: int | None, text: Any) -> None:
            # A consumer span: as little as possible while the message waits (the parent is
            # read from the metadata text, and the attributes dict made, when needed).
            self._name = name
            self._dora_attributes = attributes
            self._dora_size = size
            self._dora_text = text
            self._start_time = time_ns()

        @classmethod
        def blank(cls) -> Any:
            """A consumer span to fill in later (field by field, in ``__init__`` 's order)."""
            span = cls.__new__(cls)
            span._name = span._dora_attributes = span._dora_size = span._dora_text = None
            span._start_time = 0
            return span

        @classmethod
        def started(
            cls, name: str, kind: SpanKind, attributes: dict[str, Any], context: SpanContext, parent: SpanContext | None, links: Any
        ) -> Any:
            """A span whose context is known already (``_LeanSpans.start``)."""
            span = cls.__new__(cls)
            span._name = name
            span._kind = kind
            span._dora_attributes = attributes
            span._context = context
            span._parent = parent
            if links:
                span._links = span._new_links(links)
            span._start_time = time_ns()
            return span

        def _dora_full_attributes(self) -> dict[str, Any]:
            """The span's attributes as made at the start (without the user's later ones)."""
            size = self._dora_size
            if size is None:
                return self._dora_attributes
            attributes = self._dora_attributes.copy()
            attributes[_SIZE_KEY] = size
            return attributes

        def __getattr__(self, name: str) -> Any:  # only for the fields not made yet
            if name == "_context" or name == "_parent":
                with resolving:  # once: the feeding thread may ask at the same time
                    fields = self.__dict__
                    if "_context" not in fields:
                        # (its id may have been given already: see dora_plain_ids)
                        span_id = fields.setdefault("_dora_id", spans._new_span_id())
                        context, parent = spans.new_context(parse_context(self._dora_text), span_id)
                        fields["_parent"] = parent
                        fields["_context"] = context
                return fields[name]
            if name == "_attributes":
                value: Any = BoundedAttributes(
                    limits.max_span_attributes, self._dora_full_attributes(), immutable=False,
                    max_value_len=limits.max_span_attribute_length,
                )
            elif name == "_events":
                value = BoundedList(limits.max_events)
            elif name == "_links":
                value = BoundedList(limits.max_links)
            elif name == "_lock":
                value = threading.Lock()
            else:
                raise AttributeError(name)
            fields = self.__dict__
            fields[name] = value
            fields["_dora_touched"] = True  # its end must go the SDK's way (see end)
            return value

        def get_span_context(self) -> SpanContext:
            return self._context

        def dora_plain_ids(self) -> tuple[str, int, int] | None:
            """``(parent's metadata text, span id, sampled)`` while its context is not worked out.

            For the OTLP encoder (``_otlp``): a consumer span made from the plain form of the
            metadata text (see :func:`_child_text_parts`) has the trace id and parent span id
            written in that text; it is given its span id here, so the encoder writes the span
            without its context and the parent's ``SpanContext`` (about 3 µs). Its context, if
            asked for later, has that id: both take it with ``setdefault`` (atomic), so whoever
            comes first gives it. None: use ``_context``/``_parent``.
            """
            fields = self.__dict__
            plain = fields.get("_dora_plain")
            if plain is not None or "_context" in fields:
                return plain
            text = self._dora_text
            match = _PLAIN.fullmatch(text) if type(text) is str else None
            if match is None:
                return None
            trace_id, parent_id, flags = match.groups()
            if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
                return None
            plain = fields["_dora_plain"] = (text, fields.setdefault("_dora_id", new_span_id()), int(flags, 16) & 1)
            return plain
            text = self._dora_text
            parts = _child_text_parts(text)
            if parts is None:
                return None
            with resolving:  # the same lock as the context's: one id, whoever asks first
                if "_context" in fields:
                    return None
                plain = fields["_dora_plain"] = (text, spans._new_span_id(), parts[2])
                fields["_dora_id"] = plain[1]
            return plain

        def is_recording(self) -> bool:
            return self._end_time is None and self._context.trace_flags.sampled

        def end(self, end_time: int | None = None) -> None:
            # (NodeTracing.on_event does the same inline for the input span it ends.)
            if self._end_time is not None or self._dora_touched or spans._multi._span_processors is not spans._batch:
                self._dora_end(end_time)
                return
            self._end_time = time_ns() if end_time is None else end_time
            waiting = spans._waiting  # made readable later, off the message path
            waiting.append(self)
            if len(waiting) == _FEED_AT:
                spans._wake.set()

        def _dora_end(self, end_time: int | None) -> None:
            """``end()`` when someone else touched the span, or with other processors."""
            with self._lock:
                if self._end_time is not None:
                    sdk_log.warning("Calling end() on an ended span.")
                    return
                self._end_time = end_time if end_time is not None else time_ns()
                attributes = self.__dict__.get("_attributes")
                if attributes is not None:
                    attributes._immutable = True  # as Span.end does
            if spans.batch_ends() is not None:
                spans.finished(self)
                return
            readable = self.dora_readable()
            if readable is not None:
                processor = self._span_processor
                processor._on_ending(self)
                processor.on_end(readable)

        def dora_readable(self) -> ReadableSpan | None:
            """What ``Span.end`` hands the processors (None if not sampled)."""
            context = self._context
            if not context.trace_flags.sampled:
                return None
            fields = self.__dict__
            attributes = fields.get("_attributes")
            return ReadableSpan(
                name=self._name, context=context, parent=self._parent, resource=resource,
                attributes=self._dora_full_attributes() if attributes is None else attributes,
                events=fields.get("_events", ()), links=fields.get("_links", ()), kind=self._kind,
                instrumentation_info=info, status=self._status, start_time=self._start_time, end_time=self._end_time,
                instrumentation_scope=scope,
            )

    def readable(finished: Any) -> ReadableSpan | None:
        """The ``ReadableSpan`` of a finished span, or of a producer span's fields."""
        if type(finished) is not tuple:
            return finished.dora_readable()
        name, attrs, size, span_id, parent, start, end, trace_id, flags = finished
        if parent is None:  # a root: its trace id and flags were made with it
            state = None
        else:  # the parent's context (a consumer span of the node's works it out now)
            if not isinstance(parent, SpanContext):
                parent = parent.get_span_context()
            trace_id, state = parent.trace_id, parent.trace_state
            flags = TraceFlags(parent.trace_flags & (TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID))
        attrs = attrs.copy()
        attrs[_SIZE_KEY] = size
        return ReadableSpan(
            name=name, context=SpanContext(trace_id, span_id, False, flags, state), parent=parent, resource=resource,
            attributes=attrs, events=(), links=(), kind=producer, instrumentation_info=info, status=unset,
            start_time=start, end_time=end, instrumentation_scope=scope,
        )

    LeanSpan._dora_fields = {  # type: ignore[attr-defined]
        "_name", "_kind", "_context", "_parent", "_start_time", "_attributes", "_events", "_links", "_lock",
        *(k for k in vars(LeanSpan) if k.startswith("_") and not k.startswith("__")),
    }
    return LeanSpan, readable
