"""The hand-written W3C context codec reads and writes exactly what the official propagator does."""

from __future__ import annotations

import random

import pytest
from opentelemetry import trace
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    NonRecordingSpan,
    SpanContext,
    TraceFlags,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState

from dora_zmq.tracing import (
    decode_context,
    encode_context,
    format_context,
    parse_context,
)

PROPAGATOR = TraceContextTextMapPropagator()
TID = "0af7651916cd43dd8448eb211c80319c"
SID = "b7ad6b7169203331"


def official_extract(text: str) -> SpanContext:
    return trace.get_current_span(PROPAGATOR.extract(decode_context(text))).get_span_context()


def official_inject(context: SpanContext) -> str:
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier, context=trace.set_span_in_context(NonRecordingSpan(context)))
    return encode_context(carrier)


TEXTS = [
    # valid
    f"traceparent:00-{TID}-{SID}-01",
    f"traceparent:00-{TID}-{SID}-00",  # not sampled
    f"traceparent:00-{TID}-{SID}-03",  # sampled + random trace id
    f"traceparent:00-{TID}-{SID}-ff",
    f"traceparent: 00-{TID}-{SID}-01 ",  # spaces around the value
    f"  traceparent:00-{TID}-{SID}-01",  # spaces around the key
    f"traceparent:\t00-{TID}-{SID}-01",
    f"traceparent:00-{TID}-{SID}-01\n",
    f"traceparent:01-{TID}-{SID}-01-future-fields",  # a later version may add fields
    f"traceparent:02-{TID}-{SID}-01",
    # with a trace state, both separators, either order
    f"traceparent:00-{TID}-{SID}-01\ntracestate:rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
    f"traceparent:00-{TID}-{SID}-01;tracestate:rojo=00f067aa0ba902b7",
    f"tracestate:a=1\ntraceparent:00-{TID}-{SID}-01",
    f"traceparent:00-{TID}-{SID}-01\ntracestate:",
    f"traceparent:00-{TID}-{SID}-01\ntracestate: a=1 , b=2 ",
    f"traceparent:00-{TID}-{SID}-01\ntracestate:a=1,a=2",  # duplicate key: empty state
    f"traceparent:00-{TID}-{SID}-01\ntracestate:not a member",  # invalid member: empty state
    f"traceparent:00-{TID}-{SID}-01\ntracestate:" + ",".join(f"k{i}=v" for i in range(200)),  # too long
    f"traceparent:00-{TID}-{SID}-01\nother:thing\n\n",
    # invalid: no parent
    "",
    "garbage",
    "traceparent",
    "traceparent:",
    "tracestate:a=1",
    f"Traceparent:00-{TID}-{SID}-01",  # keys are case-sensitive
    f"traceparent:00-{TID.upper()}-{SID}-01",  # hex must be lower case
    f"traceparent:00-{'0' * 32}-{SID}-01",
    f"traceparent:00-{TID}-{'0' * 16}-01",
    f"traceparent:ff-{TID}-{SID}-01",
    f"traceparent:00-{TID}-{SID}-01-extra",  # version 00 has exactly four fields
    f"traceparent:00-{TID}-{SID}-1",
    f"traceparent:00-{TID[:-1]}-{SID}-01",
    f"traceparent:00-{TID}-{SID}01",
    f"traceparent:00_{TID}_{SID}_01",
    f"traceparent:01-{TID}-{SID}-01-" + "x" * 600,  # longer than 512
]


@pytest.mark.parametrize("text", TEXTS)
def test_parse_matches_the_propagator(text: str) -> None:
    expected = official_extract(text)
    got = parse_context(text)
    if expected == INVALID_SPAN_CONTEXT:
        assert got is None
    else:
        assert got == expected
        assert got.is_remote and got.is_valid
        assert dict(got.trace_state) == dict(expected.trace_state)


@pytest.mark.parametrize("value", [None, b"traceparent:00-x", 17, ["traceparent"]])
def test_parse_of_a_non_text_is_no_parent(value: object) -> None:
    assert parse_context(value) is None


CONTEXTS = [
    SpanContext(int(TID, 16), int(SID, 16), False, TraceFlags(1)),
    SpanContext(int(TID, 16), int(SID, 16), False, TraceFlags(0)),
    SpanContext(int(TID, 16), int(SID, 16), True, TraceFlags(3)),
    SpanContext(1, 1, False, TraceFlags(1)),  # leading zeros
    SpanContext(2**128 - 1, 2**64 - 1, False, TraceFlags(0xFF)),
    SpanContext(
        int(TID, 16), int(SID, 16), False, TraceFlags(1), TraceState([("rojo", "00f067aa0ba902b7"), ("congo", "t61")])
    ),
    SpanContext(int(TID, 16), int(SID, 16), False, TraceFlags(1), TraceState()),
    INVALID_SPAN_CONTEXT,
    SpanContext(0, int(SID, 16), False, TraceFlags(1)),  # invalid, yet the propagator writes it
]


@pytest.mark.parametrize("context", CONTEXTS)
def test_format_matches_the_propagator(context: SpanContext) -> None:
    assert format_context(context) == official_inject(context)


def test_round_trips_with_the_propagator() -> None:
    rng = random.Random(7)
    for _ in range(500):
        state = TraceState([(f"k{i}", f"v{rng.randrange(1000)}") for i in range(rng.randrange(4))])
        context = SpanContext(
            rng.getrandbits(128) or 1, rng.getrandbits(64) or 1, False, TraceFlags(rng.randrange(4)), state
        )
        text = format_context(context)
        remote = SpanContext(context.trace_id, context.span_id, True, context.trace_flags, context.trace_state)
        assert official_extract(text) == remote  # what we write, the propagator reads
        assert parse_context(official_inject(context)) == remote  # what it writes, we read
        assert parse_context(text.replace("\n", ";")) == remote  # older dora's separator
        assert (
            decode_context(text)["traceparent"]
            == f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
        )
