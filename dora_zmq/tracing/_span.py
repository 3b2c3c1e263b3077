"""The span type of :class:`._lean._LeanSpans`, and the ``ReadableSpan`` of what it exports.

A span of the type :func:`lean_span_type` makes is an SDK span (:class:`._sdk.SdkSpan`: the
SDK's fields, set directly) that knows its spans' factory: a consumer span works its context
out from the parent's metadata text when first asked for, gives the OTLP encoder its ids
straight from that text when it is the plain form (:meth:`dora_plain_ids`), and ends by
joining the factory's queue of finished spans (or the SDK's way when touched by a user or
with other processors).

A producer span is never an object: while the message waits it is a tuple of its fields
(:data:`ProducerFields`), made a ``ReadableSpan`` (by :func:`readable_maker`'s function) or
OTLP bytes (:mod:`._otlp`) off the message path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import time_ns
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import ReadableSpan, Tracer
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from . import _sdk
from ._context import parse_context
from ._traceparent import plain_ids, sampled

if TYPE_CHECKING:
    from ._lean import _LeanSpans

# (name, attributes, size, span id, parent or None, start, end, trace id, flags): the trace
# id and flags are given for a root only (a child takes its parent's)
ProducerFields = tuple[str, dict[str, Any], Any, int, Any, int, int, Any, Any]
Finished = Any  # a span of a lean span type, or ProducerFields

_sdk_log = logging.getLogger("opentelemetry.sdk.trace")
_CHILD_FLAGS = TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID


def lean_span_type(tracer: Tracer, spans: _LeanSpans) -> type[_sdk.SdkSpan]:
    """The span class of ``spans`` (the :class:`._lean._LeanSpans` of ``tracer``)."""
    new_span_id = spans.new_span_id

    class LeanSpan(_sdk.span_base(tracer)):  # type: ignore[misc]
        """An SDK span, made and ended cheaply (see :class:`._lean._LeanSpans`)."""

        def dora_resolve(self) -> tuple[SpanContext, SpanContext | None]:
            # (its id may have been given already: see dora_plain_ids)
            span_id = self.__dict__.setdefault("_dora_id", new_span_id())
            return spans.new_context(parse_context(self._dora_text), span_id)

        def dora_plain_ids(self) -> tuple[str, int, int] | None:
            """``(parent's metadata text, span id, sampled)`` while its context is not worked out.

            For the OTLP encoder (``_otlp``): a consumer span made from the plain form of the
            metadata text (see :mod:`._traceparent`) has the trace id and parent span id
            written in that text; it is given its span id here, so the encoder writes the span
            without its context and the parent's ``SpanContext`` (about 3 µs). Its context, if
            asked for later, has that id: both take it with ``setdefault`` (atomic), so whoever
            comes first gives it. None: use its context and parent.
            """
            fields = self.__dict__
            plain: tuple[str, int, int] | None = fields.get("_dora_plain")
            if plain is not None or self.context_known():
                return plain
            text = self._dora_text
            ids = plain_ids(text)
            if ids is None:
                return None
            plain = fields["_dora_plain"] = (text, fields.setdefault("_dora_id", new_span_id()), sampled(ids[2]))
            return plain

        def end(self, end_time: int | None = None) -> None:
            if spans.batched() and self.end_now(time_ns() if end_time is None else end_time):
                spans.finished(self)  # made readable later, off the message path
                return
            if not self.end_locked(end_time):
                _sdk_log.warning("Calling end() on an ended span.")
                return
            if spans.batch_ends() is not None:
                spans.finished(self)
                return
            readable = self.readable()
            if readable is not None:
                self.to_processor(readable)

    _sdk.declare_fields(LeanSpan)
    return LeanSpan


def readable_maker(tracer: Tracer) -> Callable[[Finished], ReadableSpan | None]:
    """The maker of the ``ReadableSpan`` of a finished span, or of a producer span's fields."""
    resource, info = tracer.resource, tracer.instrumentation_info
    scope = _sdk.instrumentation_scope(tracer)
    unset = _sdk.UNSET

    def readable(finished: Finished) -> ReadableSpan | None:
        if type(finished) is not tuple:
            span: ReadableSpan | None = finished.readable()
            return span
        name, attrs, size, span_id, parent, start, end, trace_id, flags = finished
        if parent is None:  # a root: its trace id and flags were made with it
            state = None
        else:  # the parent's context (a consumer span of the node's works it out now)
            if not isinstance(parent, SpanContext):
                parent = parent.get_span_context()
            trace_id, state = parent.trace_id, parent.trace_state
            flags = TraceFlags(parent.trace_flags & _CHILD_FLAGS)
        attrs = attrs.copy()
        attrs[_sdk.SIZE_KEY] = size
        return ReadableSpan(
            name=name,
            context=SpanContext(trace_id, span_id, False, flags, state),
            parent=parent,
            resource=resource,
            attributes=attrs,
            events=(),
            links=(),
            kind=SpanKind.PRODUCER,
            instrumentation_info=info,
            status=unset,
            start_time=start,
            end_time=end,
            instrumentation_scope=scope,
        )

    return readable
