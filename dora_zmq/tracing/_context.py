"""The ``open_telemetry_context`` metadata text: W3C traceparent/tracestate in and out."""

from __future__ import annotations

import logging
import re
from typing import Any, Mapping

from opentelemetry.trace import INVALID_SPAN_CONTEXT, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState

from ._traceparent import ZERO_SPAN, ZERO_TRACE


log = logging.getLogger(__name__)

_PROPAGATOR = TraceContextTextMapPropagator()


def encode_context(carrier: Mapping[str, str]) -> str:
    """``{"traceparent": v}`` -> ``"traceparent:v"`` (entries joined by newlines)."""
    return "\n".join(f"{k}:{v}" for k, v in carrier.items())


def decode_context(text: str) -> dict[str, str]:
    """Inverse of :func:`encode_context`; also reads the older ``;``-separated form."""
    carrier = {}
    for entry in text.replace(";", "\n").split("\n"):
        key, sep, value = entry.partition(":")
        if sep and key.strip():
            carrier[key.strip()] = value.strip()
    return carrier


# The W3C traceparent/tracestate, read and written directly: what TraceContextTextMapPropagator
# extract/inject do, without a carrier dict, a Context and a NonRecordingSpan per message.
_TRACEPARENT = re.compile(r"^[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:(-.*)|[ \t]*)$")
_MAX_HEADER = 512  # the propagator ignores a longer traceparent or tracestate
_PREFIX = "traceparent:"


def parse_context(text: Any) -> SpanContext | None:
    """The remote span context in metadata text, or None (absent or invalid: no parent).

    The same as ``TraceContextTextMapPropagator().extract(decode_context(text))`` followed by
    ``get_current_span(ctx).get_span_context()``, without the intermediate objects.
    """
    if not text or not isinstance(text, str):
        return None
    if text.startswith(_PREFIX) and "\n" not in text and ";" not in text:
        header: str | None = text[len(_PREFIX) :].strip()  # what encode_context writes without a tracestate
        state = None
    else:
        carrier = decode_context(text)
        header = carrier.get("traceparent")
        state = carrier.get("tracestate")
    if header is None or len(header) > _MAX_HEADER:
        return None
    match = _TRACEPARENT.match(header)
    if match is None:
        return None
    version, trace_id, span_id, flags, extra = match.groups()
    if trace_id == ZERO_TRACE or span_id == ZERO_SPAN or version == "ff" or (version == "00" and extra):
        return None
    trace_state = TraceState.from_header([state]) if state is not None and len(state) <= _MAX_HEADER else None
    return SpanContext(int(trace_id, 16), int(span_id, 16), True, TraceFlags(int(flags, 16)), trace_state)


def format_context(context: SpanContext) -> str:
    """The metadata text of a span context: ``encode_context`` of what the propagator injects."""
    if not context.is_valid and context == INVALID_SPAN_CONTEXT:
        return ""
    text = f"traceparent:00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    if context.trace_state:
        text += "\ntracestate:" + context.trace_state.to_header()
    return text
