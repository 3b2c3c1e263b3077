"""Cheap SDK spans for the message path (see the package docstring).

The pieces: the span type (:mod:`._span`, on the SDK's layout in :mod:`._sdk`), the queue of
finished spans and its thread (:mod:`._feeder`), the plain metadata text (:mod:`._traceparent`)
and the OTLP encoder (:mod:`._otlp`). :class:`_LeanSpans` puts them together for one tracer and
is what :class:`._node.NodeTracing` calls.

Threading: the message path (the node's thread) starts and ends spans and pops what the feeding
thread made ahead (span ids, blank consumer spans, root contexts: lists whose ``pop`` and
``append`` are atomic; an empty list means "make your own"). The feeding thread owns the
refilling of those lists and everything after a span ended (:mod:`._feeder`).
"""

from __future__ import annotations

import atexit
import logging
import os
import weakref
from time import time_ns
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Tracer
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags

from . import _sdk
from ._context import format_context, parse_context
from ._feeder import FEED_AT, SpanFeeder
from ._otlp import _EXPORT_AT, OtlpDirect
from ._span import Finished, lean_span_type, readable_maker
from ._traceparent import child_text_parts

log = logging.getLogger(__name__)

_SPARES = 256  # span ids and blank consumer spans made ahead by the feeding thread (see _refill)
_CHILD_FLAGS = TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID  # the flags a child keeps

_live: Any = None  # every _LeanSpans, to forget their spares in a forked child

Parts = tuple[Any, str, str, int]  # see _LeanSpans.parent_parts


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
      at ``FEED_AT`` waiting; and on close, and at exit: :mod:`._feeder`): with the OTLP/HTTP exporter alone
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

    def __init__(self, tracer: Tracer) -> None:
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

        global _live
        ids = tracer.id_generator
        self._new_trace_id = ids.generate_trace_id
        self.new_span_id = ids.generate_span_id
        # Ids made ahead (by the feeding thread) only with the SDK's generator: another one may
        # not be thread-safe, or may want to be asked when the span starts.
        self._ids_ahead = type(ids) is RandomIdGenerator
        self._ids: list[tuple[int, str]] = []  # (span id, its 16 hex digits), popped from the end
        self._traces: list[tuple[int, str]] = []  # (trace id, "traceparent:00-<its 32 hex digits>-"): see produce
        self._spares: list[tuple[Any, Context]] = []  # (blank consumer span, Context holding it)
        self._roots: list[Any] = []  # (root context, its children's text parts): see _root
        if _live is None:
            _live = weakref.WeakSet()
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_forget_spares)
        _live.add(self)
        random_ids = TraceFlags.RANDOM_TRACE_ID if ids.is_trace_id_random() else 0
        self._root_flags = TraceFlags(TraceFlags.SAMPLED | random_ids)
        self._root_suffix = f"-{self._root_flags:02x}"  # a root's metadata text after its span id
        self._multi = tracer.span_processor
        self._procs = _sdk.processors_getter(self._multi)
        self._seen: Any = None  # the processors last looked at ...
        self._ends: list[Any] | None = None  # ... and their on_end when all are batch processors
        self._batch: Any = ()  # ... and them again in that case
        self.batch_ends()
        self._format: tuple[Any, Any] = (self, None)  # a span context, and parent_parts of it
        self._span_parts: tuple[Any, Parts | None] = (self, None)  # a span of span_type, and its parent_parts
        self.span_type = lean_span_type(tracer, self)
        self._readable = readable_maker(tracer)
        # With setup_tracing's provider (one batch processor around the OTLP/HTTP exporter) the
        # finished spans are written as OTLP bytes here and sent by this thread, past the
        # ReadableSpans, the batch processor and the exporter's encoder (see _otlp).
        self._direct_procs = _sdk.processors(self._multi)
        self.direct = OtlpDirect.create(tracer, self._direct_procs, self.span_type, self._readable)
        self.feeder = SpanFeeder(self._begin_feed, self._export, self._end_feed, self._refill)
        self.finished = self.feeder.add  # a finished span (or a producer span's fields), for export soon
        self._waiting = self.feeder.waiting  # (appended to directly on the message path: see SpanFeeder.add)
        self._refill()
        self.feeder.start()
        atexit.register(self.feeder.feed, True)

    @classmethod
    def create(cls, tracer: Any) -> _LeanSpans | None:
        """The lean spans of ``tracer``, or None: use ``tracer.start_span`` (see the class)."""
        try:
            if not _sdk.plain_tracer(tracer):
                return None
            spans = cls(tracer)
            if not _sdk.layout_fits(spans.span_type):
                spans.close()
                return None
            return spans
        except Exception:  # an SDK this does not know: the plain way still works
            log.debug("lean spans unavailable", exc_info=True)
            return None

    def batch_ends(self) -> list[Any] | None:
        """The processors' ``on_end`` if all are ``BatchSpanProcessor`` s, else None."""
        procs = self._procs()
        if procs is not self._seen:
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            self._seen = procs
            batch = all(type(p) is BatchSpanProcessor for p in procs)
            self._ends = [p.on_end for p in procs] if batch else None
            self._batch = procs if batch else ()  # what the fast paths compare with
        return self._ends

    def batched(self) -> bool:
        """True if the processors are batch processors only: spans are handed over later."""
        return self._procs() is self._batch or self.batch_ends() is not None

    def new_context(
        self, parent: SpanContext | None, span_id: int | None = None
    ) -> tuple[SpanContext, SpanContext | None]:
        """A new span's context and its parent (None for a root), as start_span decides them.

        ``span_id``: the span's id if it was given one already (see ``LeanSpan.dora_plain_ids``).
        """
        if parent is not None and parent.is_valid:
            flags = TraceFlags(parent.trace_flags & _CHILD_FLAGS)
            return SpanContext(parent.trace_id, span_id or self.new_span_id(), False, flags, parent.trace_state), parent
        trace_id = self._new_trace_id()
        return SpanContext(trace_id, span_id or self.new_span_id(), False, self._root_flags), None

    def start(
        self,
        name: str,
        kind: SpanKind,
        parent: SpanContext | None,
        attrs: dict[str, Any],
        links: tuple[Link, ...] = (),
        size: int | None = None,
    ) -> Any:
        """What ``tracer.start_span(name, <parent>, kind, attrs (+ the size, if given), links)`` returns."""
        context, parent = self.new_context(parent)
        if not context.trace_flags.sampled:
            return trace.NonRecordingSpan(context)
        span = self.span_type.started(name, kind, attrs, context, parent, links)
        if size is not None:
            span._dora_size = size
        if self.batch_ends() is None:
            parent_context = Context() if parent is None else trace.set_span_in_context(trace.NonRecordingSpan(parent))
            self._multi.on_start(span, parent_context=parent_context)
        return span

    def consume(self, name: str, text: Any, attrs: dict[str, Any], size: int | None = None) -> Any:
        """A started consumer span, child of the context in ``text``.

        Its attributes are ``attrs`` plus the message size if ``size`` is given: ``attrs`` is
        then shared (the per-input ones), and the span's own dict is made only at export.
        """
        if not self.batched():
            if size is not None:
                attrs = attrs.copy()
                attrs[_sdk.SIZE_KEY] = size
            return self.start(name, SpanKind.CONSUMER, parse_context(text), attrs)
        return self.span_type(name, attrs, size, text)  # its context is worked out when needed

    def input_span(
        self, name: str, attrs: dict[str, Any], size: int, text: Any, now: int
    ) -> tuple[Any, Context | None]:
        """An input's consumer span (:meth:`consume`, started at ``now``), and the ``Context``
        holding it if that was made ahead (None: make it)."""
        if self._procs() is not self._batch and self.batch_ends() is None:  # (batched(), without a call)
            return self.consume(name, text, attrs, size), None
        spares = self._spares
        try:
            spare = spares.pop() if spares else None  # (no exception raised when there is none)
        except IndexError:  # another thread took the last one
            spare = None
        if spare is None:  # none made ahead (a burst)
            return self.span_type(name, attrs, size, text), None
        span, context = spare
        span.fill(name, attrs, size, text, now)
        if not text or not isinstance(text, str):  # no parent (a timer tick): a new trace
            roots = self._roots  # what working its context out would make, made ahead
            try:
                root = roots.pop() if roots else None
            except IndexError:  # another thread took the last one
                root = None
            if root is not None:
                span.set_root(*root)
        return span, context

    def end_input(self, span: Any, now: int) -> None:
        """End an input's consumer span at ``now`` (any span: one of another type ends its way)."""
        if (
            type(span) is self.span_type
            and (self._procs() is self._batch or self.batch_ends() is not None)
            and span.end_now(now)
        ):
            waiting = self._waiting  # (SpanFeeder.add, without a call)
            waiting.append(span)
            if len(waiting) == FEED_AT:
                self.feeder.wake()
        else:
            span.end()

    def produce(self, name: str, attrs: dict[str, Any], size: int, parent: Any, links: tuple[Link, ...]) -> str:
        """Start and end a producer span (attributes ``attrs`` + the size); its metadata text.

        ``parent``: a span, a span context, or None (a root: a new trace).
        """
        if links or (self._procs() is not self._batch and self.batch_ends() is None):  # (not batched())
            if parent is not None and not isinstance(parent, SpanContext):
                parent = parent.get_span_context()
            span = self.start(name, SpanKind.PRODUCER, parent, attrs, links, size)  # (attrs stay the output's)
            span.end()
            return format_context(span.get_span_context())
        last, parts = self._span_parts  # (parent_parts' cache, without a call: an input's outputs)
        if parent is None:  # (a source's outputs: parent_parts, without a call)
            parts = None
        elif parent is not last:
            parts = self.parent_parts(parent)
        ids = self._ids
        try:
            span_id, hex_id = ids.pop() if ids else self.new_id()
        except IndexError:  # another thread took the last one
            span_id, hex_id = self.new_id()
        if parts is None:  # a root (a source's output): a new trace each time, its id made ahead
            traces = self._traces
            try:
                trace_id, prefix = traces.pop() if traces else self.new_trace()
            except IndexError:  # another thread took the last one
                trace_id, prefix = self.new_trace()
            flags = self._root_flags
            if flags & TraceFlags.SAMPLED:
                start = time_ns()
                waiting = self._waiting  # (SpanFeeder.add, without a call)
                waiting.append((name, attrs, size, span_id, None, start, time_ns(), trace_id, flags))
                if len(waiting) == FEED_AT:
                    self.feeder.wake()
            return prefix + hex_id + self._root_suffix
        source, prefix, suffix, sampled = parts
        if sampled:
            start = time_ns()
            waiting = self._waiting  # (SpanFeeder.add, without a call)
            waiting.append((name, attrs, size, span_id, source, start, time_ns(), None, None))
            if len(waiting) == FEED_AT:
                self.feeder.wake()
        return prefix + hex_id + suffix

    def new_trace(self) -> tuple[int, str]:
        """A trace id and the start of its metadata text, made now (none made ahead)."""
        trace_id = self._new_trace_id()
        return trace_id, f"traceparent:00-{trace_id:032x}-"

    def new_id(self) -> tuple[int, str]:
        """A span id and its 16 hex digits, made now (none made ahead: a burst, or another generator)."""
        span_id = self.new_span_id()
        return span_id, f"{span_id:016x}"

    def parent_parts(self, parent: Any) -> Parts | None:
        """What the children of ``parent`` need while the message waits, or None for a root.

        ``(parent for the export, text prefix, text suffix, sampled)``: the text of a child
        is ``prefix + its span id in hex + suffix``. ``parent`` is a span or a span context;
        for a consumer span of this node, the parts come from the metadata text it was made
        from (or were made ahead with its context), so its context is worked out at export.
        """
        if type(parent) is self.span_type:
            last, known = self._span_parts  # (a node sends several outputs per input)
            if parent is last:
                return known
            parts = parent._dora_parts or child_text_parts(parent._dora_text)
            if parts is not None:
                found: Parts = (parent, *parts)
                self._span_parts = (parent, found)
                return found
            parent = parent.get_span_context()
        elif parent is not None and not isinstance(parent, SpanContext):
            parent = parent.get_span_context()
        if parent is None or not parent.is_valid:
            return None
        last, known = self._format  # the parts of the last span context asked about
        if parent is last:
            result: Parts = known
            return result
        flags = parent.trace_flags & _CHILD_FLAGS
        state = parent.trace_state
        suffix = f"-{flags:02x}" + ("\ntracestate:" + state.to_header() if state else "")
        result = (parent, f"traceparent:00-{parent.trace_id:032x}-", suffix, flags & TraceFlags.SAMPLED)
        self._format = (parent, result)
        return result

    def feed(self, flush: bool = False) -> None:
        """Hand every finished span waiting to the exporter (``flush``: send all now).

        Written as OTLP bytes and sent in requests of up to ``_EXPORT_AT`` spans, at least every
        second (:class:`OtlpDirect`), or else handed to the span processors as ``ReadableSpan`` s.
        """
        self.feeder.feed(flush)

    # -- the feeding thread's side (under the feeder's lock) -------------------------------

    def _begin_feed(self) -> None:
        direct = self.direct
        if direct is not None and self._procs() is not self._direct_procs:
            direct.send()  # processors were added: from now on they get every span
            self.direct = None

    def _export(self, finished: Finished) -> None:
        direct = self.direct
        if direct is not None:
            direct.add(finished)
            if direct.pending() >= _EXPORT_AT:
                direct.send()
            return
        span = self._readable(finished)
        if span is not None:
            ends = self.batch_ends()
            if ends is None:
                self._multi.on_end(span)
            else:
                for on_end in ends:
                    on_end(span)

    def _end_feed(self, flush: bool) -> None:
        direct = self.direct
        if direct is not None and (flush or direct.due()):
            direct.send()

    def _refill(self) -> None:
        """Make span ids, root contexts, trace ids and blank consumer spans ahead, up to ``_SPARES`` of each.

        Made here, off the message path, so that a message only pops them. A burst empties
        the lists; the message path then makes its own (with warm caches, it is cheap). Root
        contexts (1.3 µs each) are a list of their own, taken only by inputs without a parent
        (timer ticks), and so are trace ids with their text, taken only by outputs without a
        parent (a source's): a node whose messages all have a parent uses none, so none are
        made again.
        """
        if self._ids_ahead:
            ids, new_id = self._ids, self.new_id
            for _ in range(_SPARES - len(ids)):
                ids.append(new_id())
            roots, root = self._roots, self._root
            for _ in range(_SPARES - len(roots)):
                roots.append(root())
            traces, new_trace = self._traces, self.new_trace
            for _ in range(_SPARES - len(traces)):
                traces.append(new_trace())
        spares, blank = self._spares, self.span_type.blank
        for _ in range(_SPARES - len(spares)):
            span = blank()
            spares.append((span, Context({_sdk.SPAN_KEY: span})))

    def _root(self) -> tuple[SpanContext, tuple[str, str, int]] | None:
        """A root span's context (what ``new_context(None)`` makes) and its children's text parts.

        None with another id generator than the SDK's: its ids are asked for when needed.
        """
        if not self._ids_ahead:
            return None
        context = SpanContext(self._new_trace_id(), self.new_span_id(), False, self._root_flags)
        flags = self._root_flags & _CHILD_FLAGS
        return context, (f"traceparent:00-{context.trace_id:032x}-", f"-{flags:02x}", flags & TraceFlags.SAMPLED)

    def close(self) -> None:
        """Stop the feeding thread, after handing over what waits."""
        self.feeder.close()


def _forget_spares() -> None:
    """In a forked child: ids made ahead would repeat the parent's (as ``random`` reseeds)."""
    for spans in list(_live or ()):
        spans._ids.clear()
        spans._traces.clear()
        spans._roots.clear()
        spans._spares.clear()
        direct = getattr(spans, "direct", None)
        if direct is not None:
            direct.forget()  # the parent sends those
