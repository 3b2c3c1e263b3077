"""The shortcuts of the message path export what ``tracer.start_span`` spans would.

NodeTracing reads a child's traceparent text straight from the parent's metadata text when
that is the plain form, takes consumer spans, root contexts and span ids made ahead by the
feeding thread, and sets OpenTelemetry's context variable directly. Each shortcut is
compared here with the SDK's own spans (test_node_spans._run / _normalize), including the
texts that must not take it (upper case, zero ids, other versions, trace state, separators).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import pyarrow as pa
import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dora_zmq.tracing import NodeTracing, format_context
from dora_zmq.tracing._traceparent import child_text_parts as _child_text_parts

from .test_node_spans import KEY, _event, _normalize, _run

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
TEXTS = [
    f"traceparent:00-{TRACE}-{SPAN}-01",  # the plain form: read from the text
    f"traceparent:00-{TRACE}-{SPAN}-00",  # not sampled
    f"traceparent:00-{TRACE}-{SPAN}-03",  # random trace id flag
    f"traceparent:00-{TRACE}-{SPAN}-ff",  # unknown flags: masked
    f"traceparent:00-{TRACE.upper()}-{SPAN}-01",  # upper case: invalid, a new trace
    f"traceparent:00-{'0' * 32}-{SPAN}-01",  # zero trace id: invalid
    f"traceparent:00-{TRACE}-{'0' * 16}-01",  # zero span id: invalid
    f"traceparent:01-{TRACE}-{SPAN}-01",  # another version
    f"traceparent:ff-{TRACE}-{SPAN}-01",  # a forbidden version
    f"traceparent:00-{TRACE}-{SPAN}-01\ntracestate:k=v",  # with a trace state
    f"traceparent:00-{TRACE}-{SPAN}-01;tracestate:k=v",  # older separator
    f"traceparent: 00-{TRACE}-{SPAN}-01",  # blanks
    f"traceparent:00-{TRACE}-{SPAN}-0g",  # not hex
    f"traceparent:00-{TRACE}_{SPAN}-01",
    "",
    None,
]


def _relay(texts: list[Any]) -> Any:
    def scenario(nt: NodeTracing, user: Any) -> list[str]:
        sent = []
        for i, text in enumerate(texts):
            ev = _event("in", text, pa.array([i], pa.uint8()))
            nt.on_event(ev)
            sent.append(nt.on_send("out", ev["metadata"], i)[KEY])  # dora's idiom
            sent.append(nt.on_send("out", None, i)[KEY])  # again, no metadata: same parent
            sent.append(nt.on_send("other", {"x": 1}, i)[KEY])
        nt.on_event({"type": "STOP", "id": "MANUAL", "value": None, "metadata": {}})
        return sent

    return scenario


def test_child_text_parts_only_for_the_plain_form() -> None:
    assert _child_text_parts(TEXTS[0]) == (f"traceparent:00-{TRACE}-", "-01", 1)
    assert _child_text_parts(TEXTS[1]) == (f"traceparent:00-{TRACE}-", "-00", 0)
    assert _child_text_parts(TEXTS[3]) == (f"traceparent:00-{TRACE}-", "-03", 1)
    assert all(_child_text_parts(t) is None for t in TEXTS[4:])


@pytest.mark.parametrize("spares", [True, False], ids=["made-ahead", "none-ahead"])
def test_relay_spans_export_what_start_span_does(monkeypatch: pytest.MonkeyPatch, spares: bool) -> None:
    scenario = _relay(TEXTS)
    if not spares:  # a burst used up what the feeding thread made: the message path makes its own
        inner = scenario

        def scenario(nt: NodeTracing, user: Any) -> list[str]:
            if nt._lean is not None:
                nt._lean._refill = lambda: None  # the feeding thread makes no more
                nt._lean._ids.clear()
                nt._lean._roots.clear()
                nt._lean._spares.clear()
            return inner(nt, user)

    lean, lean_sent, _ = _run(True, monkeypatch, None, scenario)
    sdk, sdk_sent, _ = _run(False, monkeypatch, None, scenario)
    assert len(lean) == len(sdk)
    assert _normalize(lean, lean_sent) == _normalize(sdk, sdk_sent)
    # the plain texts' children continue the sender's trace
    assert {s.context.trace_id for s in lean if s.name == "node-x/out"} >= {int(TRACE, 16)}


def test_timer_ticks_start_one_trace_each(monkeypatch: pytest.MonkeyPatch) -> None:
    def ticks(nt: NodeTracing, user: Any) -> list[str]:
        sent = []
        for _ in range(5):
            nt.on_event({"type": "INPUT", "id": "tick", "value": pa.array([], pa.null()), "metadata": {}})
            sent.append(nt.on_send("out", None, 8)[KEY])
            with user.start_as_current_span("user-work"):
                sent.append(nt.on_send("out", {"k": 1}, 8)[KEY])
        return sent

    lean, lean_sent, _ = _run(True, monkeypatch, None, ticks)
    sdk, sdk_sent, _ = _run(False, monkeypatch, None, ticks)
    assert _normalize(lean, lean_sent) == _normalize(sdk, sdk_sent)
    ticks_ = [s for s in lean if s.name == "node-x/tick"]
    assert len({s.context.trace_id for s in ticks_}) == 5 and all(s.parent is None for s in ticks_)


def test_outputs_without_a_parent_start_one_trace_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """A source's outputs (no input handled, or after a non-input event): roots, their trace ids
    made ahead; with a user's span current, its children; as the SDK's spans."""

    def source(nt: NodeTracing, user: Any) -> list[str]:
        sent = [nt.on_send("out", None, 8)[KEY] for _ in range(3)]  # nothing handled yet
        with user.start_as_current_span("user-work"):
            sent.append(nt.on_send("out", {"k": 1}, 8)[KEY])  # the user's span is the parent
        nt.on_event(_event("in", None, pa.array([1], pa.uint8())))
        nt.on_event({"type": "ERROR", "id": None, "value": None, "metadata": {}, "error": "Timeout"})
        sent += [nt.on_send("out", None, 8)[KEY] for _ in range(3)]  # the input's span ended: roots again
        return sent

    lean, lean_sent, _ = _run(True, monkeypatch, None, source)
    sdk, sdk_sent, _ = _run(False, monkeypatch, None, source)
    assert _normalize(lean, lean_sent) == _normalize(sdk, sdk_sent)
    roots = [s for s in lean if s.name == "node-x/out" and s.parent is None]
    assert len(roots) == 6 and len({s.context.trace_id for s in roots}) == 6
    texts = {format_context(s.get_span_context()) for s in lean}
    assert set(lean_sent) <= texts  # each text names its exported span


def _tracing() -> tuple[NodeTracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "n"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    nt = NodeTracing(provider, "n", "df", "m")
    assert nt._lean is not None
    return nt, exporter


def test_the_input_span_is_the_current_one_over_the_context_there_was() -> None:
    nt, exporter = _tracing()
    base_key = otel_context.create_key("user-base")
    token = otel_context.attach(otel_context.set_value(base_key, "kept"))
    try:
        for i in range(3):
            nt.on_event(_event("a", TEXTS[0], pa.array([i], pa.uint8())))
            assert trace.get_current_span() is nt._current
            assert otel_context.get_value(base_key) == "kept"
        left = otel_context.attach(otel_context.set_value(base_key, "left over"))  # a user's attach never detached
        nt.on_event(_event("a", None, pa.array([9], pa.uint8())))
        assert trace.get_current_span() is nt._current and otel_context.get_value(base_key) == "kept"
        nt.on_event({"type": "STOP", "id": "MANUAL", "value": None, "metadata": {}})
        assert trace.get_current_span() is trace.INVALID_SPAN
        assert otel_context.get_value(base_key) == "kept"
        del left
    finally:
        otel_context.detach(token)
        nt.close()
    assert len(exporter.get_finished_spans()) == 4


def test_next_from_another_thread_keeps_each_threads_context() -> None:
    nt, exporter = _tracing()
    try:
        nt.on_event(_event("a", TEXTS[0]))
        seen: list[Any] = []

        def other() -> None:
            nt.on_event(_event("a", TEXTS[2]))  # the previous span's context belongs to the main thread
            seen.append(trace.get_current_span() is nt._current)
            nt.on_event({"type": "STOP", "id": "MANUAL", "value": None, "metadata": {}})
            seen.append(trace.get_current_span() is trace.INVALID_SPAN)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert seen == [True, True]
    finally:
        nt.close()
    assert sorted(s.name for s in exporter.get_finished_spans()) == ["n/a", "n/a"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_does_not_reuse_the_ids_made_ahead() -> None:
    nt, _ = _tracing()
    try:
        lean = nt._lean
        assert lean._ids and lean._roots and lean._spares and lean._traces
        pid = os.fork()
        if pid == 0:  # the child: nothing made ahead survives
            os._exit(0 if not lean._ids and not lean._roots and not lean._spares and not lean._traces else 1)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
        assert lean._ids and lean._roots and lean._spares and lean._traces
    finally:
        nt.close()


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "sdk"])
def test_fan_in_links_name_the_latest_message_of_every_other_input(monkeypatch: pytest.MonkeyPatch, lean: bool) -> None:
    order = ["a", "a", "b", "a", "c", "c", "b", "closed", "a", "d", "d", "b"]
    expected: list[list[int]] = []

    def scenario(nt: NodeTracing, user: Any) -> list[str]:
        latest: dict[str, int] = {}  # the rule, kept here: input -> span id of its latest message
        current = ""
        sent = []
        for i, input_id in enumerate(order):
            if input_id == "closed":  # no input span now; the last input stays the current one
                nt.on_event({"type": "INPUT_CLOSED", "id": "c", "value": None, "metadata": {}})
            else:
                nt.on_event(_event(input_id, TEXTS[2 * (i % 2)], pa.array([i], pa.uint8())))  # sampled
                current = input_id
                latest[input_id] = trace.get_current_span().get_span_context().span_id
            sent.append(nt.on_send("out", None, i)[KEY])
            expected.append([span_id for key, span_id in latest.items() if key != current])
        return sent

    spans, _, _ = _run(lean, monkeypatch, None, scenario)
    outs = sorted((s for s in spans if s.name == "node-x/out"), key=lambda s: s.start_time)
    assert [[link.context.span_id for link in s.links] for s in outs] == expected


def test_spans_dropped_for_want_of_room_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    from dora_zmq.tracing import _feeder

    nt, _ = _tracing()
    try:
        lean = nt._lean
        with lean.feeder.lock:  # the feeding thread waits: the deque fills up
            for i in range(_feeder._MAX_WAITING + 10):
                nt.on_event(_event("a", TEXTS[0], pa.array([i % 256], pa.uint8())))
        with caplog.at_level("WARNING", logger="dora_zmq.tracing._feeder"):
            lean.feed()
            lean.feed()
        assert [r.getMessage() for r in caplog.records].count(
            f"tracing: more than {_feeder._MAX_WAITING} spans were waiting for export; the oldest were dropped"
        ) == 1
    finally:
        nt.close()
