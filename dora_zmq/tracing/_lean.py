"""Cheap SDK spans for the message path (see the package docstring)."""

from __future__ import annotations

import logging
from time import time_ns
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags


from ._context import format_context, parse_context
from ._setup import _EXPORT_TIMEOUT_S

log = logging.getLogger(__name__)

_SIZE_KEY = "messaging.message.body.size"

_FEED_INTERVAL_S = 0.5  # how often finished spans go to the span processors
_FEED_AT = 1024  # ... or as soon as this many are waiting
_MAX_WAITING = 16384  # beyond this the oldest are dropped (the batch processor drops too when full)


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
    * finished spans wait in a deque, and a thread turns them into the ``ReadableSpan`` s the
      SDK would have made and hands them to the batch processors, every
      ``_FEED_INTERVAL_S`` (and on close, and at exit).

    That last step needs the span processors to be ``BatchSpanProcessor`` s only (their
    ``on_start`` does nothing, and they export later anyway); with any other processor added,
    spans are started and ended through the processors the SDK way. :meth:`create` returns
    None (use ``start_span``) for another sampler, a disabled tracer, the SDK's own span
    metrics on, attribute limits that would change dora's attributes, or an SDK whose span has
    a field this class does not provide (checked against a real SDK span, so an SDK upgrade
    falls back instead of breaking).
    """

    def __init__(self, tracer: Any) -> None:
        import atexit
        import threading
        from collections import deque

        ids = tracer.id_generator
        self._new_trace_id = ids.generate_trace_id
        self._new_span_id = ids.generate_span_id
        self._root_flags = TraceFlags(TraceFlags.SAMPLED | (TraceFlags.RANDOM_TRACE_ID if ids.is_trace_id_random() else 0))
        self._multi = tracer.span_processor
        self._seen: Any = None  # the processors last looked at ...
        self._ends: list[Any] | None = None  # ... and their on_end when all are batch processors
        self._batch: Any = ()  # ... and them again in that case
        self.batch_ends()
        self._format: tuple[Any, Any] = (self, None)  # a parent, and the text parts of its children
        self._waiting: Any = deque(maxlen=_MAX_WAITING)  # finished spans for the processors
        self._span, self._readable = _lean_span_type(tracer, self)
        self._feed_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._feeder = threading.Thread(target=self._feed_loop, name="dora-otel-spans", daemon=True)
        self._feeder.start()
        atexit.register(self.feed)

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

    def new_context(self, parent: SpanContext | None) -> tuple[SpanContext, SpanContext | None]:
        """A new span's context and its parent (None for a root), as start_span decides them."""
        if parent is not None and parent.is_valid:
            flags = parent.trace_flags & (TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
            return SpanContext(parent.trace_id, self._new_span_id(), False, TraceFlags(flags), parent.trace_state), parent
        return SpanContext(self._new_trace_id(), self._new_span_id(), False, self._root_flags), None

    def start(self, name: str, kind: SpanKind, parent: SpanContext | None, attrs: dict[str, Any], links: tuple[Link, ...] = ()) -> Any:
        """What ``tracer.start_span(name, <parent>, kind, attrs, links)`` returns."""
        context, parent = self.new_context(parent)
        if not context.trace_flags.sampled:
            return trace.NonRecordingSpan(context)
        span = self._span(name, kind, attrs, context, parent, links)
        if self.batch_ends() is None:
            parent_context = trace.set_span_in_context(trace.NonRecordingSpan(parent)) if parent is not None else otel_context.Context()
            self._multi.on_start(span, parent_context=parent_context)
        return span

    def consume(self, name: str, text: Any, attrs: dict[str, Any]) -> Any:
        """A started consumer span, child of the context in ``text``."""
        if self._multi._span_processors is not self._batch and self.batch_ends() is None:
            return self.start(name, SpanKind.CONSUMER, parse_context(text), attrs)
        return self._span(name, SpanKind.CONSUMER, attrs, text=text)  # its context is worked out when needed

    def produce(self, name: str, attrs: dict[str, Any], size: int, parent: SpanContext | None, links: tuple[Link, ...]) -> str:
        """Start and end a producer span (attributes ``attrs`` + the size); its metadata text."""
        if links or (self._multi._span_processors is not self._batch and self.batch_ends() is None):
            attrs = attrs.copy()
            attrs[_SIZE_KEY] = size
            span = self.start(name, SpanKind.PRODUCER, parent, attrs, links)
            span.end()
            return format_context(span.get_span_context())
        span_id = self._new_span_id()
        last, parts = self._format
        if parent is not last:
            if parent is None or not parent.is_valid:  # a root: a new trace each time
                trace_id = self._new_trace_id()
                flags = self._root_flags
                if flags & TraceFlags.SAMPLED:
                    now = time_ns()
                    self.finished((name, attrs, size, trace_id, span_id, flags, None, None, now, time_ns()))
                return f"traceparent:00-{trace_id:032x}-{span_id:016x}-{flags:02x}"
            flags = TraceFlags(parent.trace_flags & (TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID))
            state = parent.trace_state
            suffix = f"-{flags:02x}" + ("\ntracestate:" + state.to_header() if state else "")
            parts = (f"traceparent:00-{parent.trace_id:032x}-", suffix, flags & TraceFlags.SAMPLED, parent.trace_id, flags, state)
            self._format = (parent, parts)
        prefix, suffix, sampled, trace_id, flags, state = parts
        if sampled:
            now = time_ns()
            waiting = self._waiting
            waiting.append((name, attrs, size, trace_id, span_id, flags, state, parent, now, time_ns()))
            if len(waiting) == _FEED_AT:
                self._wake.set()
        return f"{prefix}{span_id:016x}{suffix}"

    def finished(self, span: Any) -> None:
        """A finished span (or a producer span's fields) for the processors, soon."""
        waiting = self._waiting
        waiting.append(span)
        if len(waiting) == _FEED_AT:
            self._wake.set()

    def feed(self) -> None:
        """Hand every finished span waiting to the span processors, as ``ReadableSpan`` s."""
        with self._feed_lock:
            waiting, readable = self._waiting, self._readable
            while waiting:
                try:
                    span = readable(waiting.popleft())
                    if span is not None:
                        ends = self.batch_ends()
                        if ends is None:
                            self._multi.on_end(span)
                        else:
                            for on_end in ends:
                                on_end(span)
                except IndexError:
                    return
                except Exception:  # one bad span must not stop the others, but it must show
                    log.warning("could not export a span", exc_info=True)

    def _feed_loop(self) -> None:
        while not self._closed:
            self._wake.wait(_FEED_INTERVAL_S)
            self._wake.clear()
            self.feed()

    def close(self) -> None:
        """Stop the feeding thread, after handing over what waits."""
        self._closed = True
        self._wake.set()
        self._feeder.join(_EXPORT_TIMEOUT_S)
        self.feed()


def _lean_span_type(tracer: Any, spans: _LeanSpans) -> tuple[type, Any]:
    """The span class of :class:`_LeanSpans` for ``tracer``, and its ``ReadableSpan`` maker."""
    import threading

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

        def __init__(self, name, kind, attributes, context=None, parent=None, links=(), text=None) -> None:
            self._name = name
            self._kind = kind
            self._dora_attributes = attributes
            if context is None:
                self._dora_text = text
            else:
                self._context = context
                self._parent = parent
            if links:
                self._links = self._new_links(links)
            self._start_time = time_ns()

        def __getattr__(self, name: str) -> Any:  # only for the fields not made yet
            if name == "_context" or name == "_parent":
                with resolving:  # once: the feeding thread may ask at the same time
                    fields = self.__dict__
                    if "_context" not in fields:
                        context, parent = spans.new_context(parse_context(self._dora_text))
                        fields["_parent"] = parent
                        fields["_context"] = context
                return fields[name]
            if name == "_attributes":
                value: Any = BoundedAttributes(
                    limits.max_span_attributes, self._dora_attributes, immutable=False, max_value_len=limits.max_span_attribute_length
                )
            elif name == "_events":
                value = BoundedList(limits.max_events)
            elif name == "_links":
                value = BoundedList(limits.max_links)
            elif name == "_lock":
                value = threading.Lock()
            else:
                raise AttributeError(name)
            self.__dict__[name] = value
            return value

        def get_span_context(self) -> SpanContext:
            return self._context

        def is_recording(self) -> bool:
            return self._end_time is None and self._context.trace_flags.sampled

        def end(self, end_time: int | None = None) -> None:
            fields = self.__dict__
            if "_end_time" in fields or "_lock" in fields or "_attributes" in fields or spans._multi._span_processors is not spans._batch:
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
                attributes=self._dora_attributes if attributes is None else attributes,
                events=fields.get("_events", ()), links=fields.get("_links", ()), kind=self._kind,
                instrumentation_info=info, status=self._status, start_time=self._start_time, end_time=self._end_time,
                instrumentation_scope=scope,
            )

    def readable(finished: Any) -> ReadableSpan | None:
        """The ``ReadableSpan`` of a finished span, or of a producer span's fields."""
        if type(finished) is not tuple:
            return finished.dora_readable()
        name, attrs, size, trace_id, span_id, flags, state, parent, start, end = finished
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
