"""The plain form of the metadata text, read without a ``SpanContext``.

dora_zmq writes a span context without a trace state as ``traceparent:00-<32 hex>-<16 hex>-
<2 hex>`` (lower case). A consumer span made from such a text knows its trace id, its parent's
span id and its flags from the text itself, and so do the texts of its children: the message
path and the OTLP encoder slice the text instead of parsing it into a ``SpanContext``. Any
other text (a trace state, upper case, another version, zero ids) is None here, and the
callers use :func:`._context.parse_context`; both give the same spans (tests/tracing).
"""

from __future__ import annotations

import re
from typing import Any

from opentelemetry.trace import TraceFlags

_PLAIN = re.compile(r"traceparent:00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
ZERO_TRACE, ZERO_SPAN = "0" * 32, "0" * 16  # invalid ids
_SUFFIXES = ("-00", "-01", "-02", "-03")  # a child's text after its span id, by its flags
_CHILD_FLAGS = int(TraceFlags.SAMPLED | getattr(TraceFlags, "RANDOM_TRACE_ID", 0))  # what a child keeps
_SAMPLED = int(TraceFlags.SAMPLED)

TRACE_ID = slice(15, 47)  # where a plain text has the trace id (hex) ...
SPAN_ID = slice(48, 64)  # ... and the span id
_CHILD_PREFIX = 48  # a child's text starts as its parent's, up to the span id


def plain_ids(text: Any) -> tuple[str, str, str] | None:
    """``(trace id, span id, flags)`` in hex if ``text`` is the plain form with valid ids, else None."""
    match = _PLAIN.fullmatch(text) if type(text) is str else None
    if match is None:
        return None
    trace_id, span_id, flags = match.groups()
    if trace_id == ZERO_TRACE or span_id == ZERO_SPAN:
        return None  # an all-zero (invalid) id: parse_context decides
    return trace_id, span_id, flags


def sampled(flags: str) -> int:
    """The sampled bit of hex ``flags`` (1 or 0)."""
    return int(flags, 16) & _SAMPLED


def child_text_parts(text: Any) -> tuple[str, str, int] | None:
    """The text parts of the children of the consumer span made from metadata ``text``.

    ``(prefix, suffix, sampled)``: a child's text is ``prefix + its span id in hex + suffix``.
    None unless ``text`` is the plain form. The same as parse_context + new_context + the
    parts of that: same trace id, flags masked to sampled and random, no trace state.
    """
    ids = plain_ids(text)
    if ids is None:
        return None
    flags = int(ids[2], 16) & _CHILD_FLAGS
    return text[:_CHILD_PREFIX], _SUFFIXES[flags], flags & _SAMPLED
