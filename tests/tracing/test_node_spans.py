"""NodeTracing's cheap spans export exactly what ``tracer.start_span`` spans would.

The same node script runs twice: with the lean spans (the default with a provider like
``setup_tracing``'s) and with the SDK's own ``start_span`` (the fallback). Ids are random, so
spans are compared by what identifies them (name, order), their parents and links by the
same labels, and everything else field by field.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pyarrow as pa
import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from dora_zmq.tracing import _lean
from dora_zmq.tracing import NodeTracing, decode_context, format_context

KEY = "open_telemetry_context"
EXTERNAL = "traceparent:00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\ntracestate:rojo=00f067aa0ba902b7"
UNSAMPLED = "traceparent:00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-00"
OTHER = "traceparent:00-2af7651916cd43dd8448eb211c80319c-d7ad6b7169203331-03"


def _event(input_id: str, text: str | None = None, value: Any = None) -> dict[str, Any]:
    return {"type": "INPUT", "id": input_id, "value": value, "metadata": {KEY: text} if text is not None else {}}


def _scenario(nt: NodeTracing, user: Any) -> list[str]:
    """A node's life: timer ticks, a traced input, user spans, fan-in, unsampled and bad contexts."""
    sent = []
    value = pa.array([1, 2, 3], pa.uint8())
    nt.on_event({"type": "INPUT", "id": "tick", "value": None, "metadata": {}})
    sent.append(nt.on_send("out", None, 16)[KEY])  # child of the tick, a new trace
    sent.append(nt.on_send("out", {"k": 1}, 16)[KEY])  # again: same parent
    ev = _event("a", EXTERNAL, value)
    nt.on_event(ev)
    with user.start_as_current_span("user-work") as work:  # nests under the input span
        work.set_attribute("user.n", 1)
    current = trace.get_current_span()
    assert current.is_recording()
    current.set_attribute("user.mark", "x")
    current.add_event("handled", {"n": 2})
    current.set_status(StatusCode.ERROR, "bad input")
    current.record_exception(ValueError("boom"), attributes={"exception.stacktrace": "-"})
    sent.append(nt.on_send("out", ev["metadata"], 3)[KEY])  # dora's idiom: child of the input span
    sent.append(nt.on_send("out2", {"k": 2}, 4)[KEY])  # no context: the input being handled
    nt.on_event(_event("b", UNSAMPLED, value))  # a parent that was not sampled
    assert not trace.get_current_span().is_recording()
    sent.append(nt.on_send("out", {KEY: UNSAMPLED}, 5)[KEY])
    nt.on_event(_event("a", EXTERNAL, value))  # fan-in: links to b's latest
    sent.append(nt.on_send("out", None, 6)[KEY])
    sent.append(nt.on_send("out", {KEY: OTHER}, 7)[KEY])  # another context: child of it
    nt.on_event(_event("b", "garbage", value))  # a bad context: a new trace
    sent.append(
        nt.on_send("out", {KEY: "garbage"}, 8)[KEY]
    )  # bad in the send too: not the input's text... but equal: input's child
    nt.on_event({"type": "INPUT_CLOSED", "id": "b", "value": None, "metadata": {}})
    sent.append(nt.on_send("out", None, 9)[KEY])  # no input being handled, nothing current: a root
    with user.start_as_current_span("user-outer"):
        sent.append(nt.on_send("out", None, 10)[KEY])  # ... or the user's current span
    nt.on_event(_event("a", "", value))
    time.sleep(0.002)
    return sent


def _single_input(nt: NodeTracing, user: Any) -> list[str]:
    """One input (no links): the path most nodes take."""
    sent = []
    for i, text in enumerate([EXTERNAL, OTHER, UNSAMPLED, None, "garbage", EXTERNAL]):
        ev = _event("in", text, pa.array([i] * i, pa.uint8()))
        nt.on_event(ev)
        sent.append(nt.on_send("out", ev["metadata"], i)[KEY])
        sent.append(nt.on_send("out", None, i)[KEY])
        sent.append(nt.on_send("out", {KEY: OTHER}, i)[KEY])
    nt.on_event({"type": "STOP", "id": "MANUAL", "value": None, "metadata": {}})
    sent.append(nt.on_send("out", None, 99)[KEY])
    return sent


def _run(
    lean: bool, monkeypatch: pytest.MonkeyPatch, extra: SpanProcessor | None = None, scenario: Any = _scenario
) -> tuple[list[ReadableSpan], list[str], NodeTracing]:
    if not lean:
        monkeypatch.setattr(_lean._LeanSpans, "create", classmethod(lambda cls, tracer: None))
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "node-x", "dora.dataflow_id": "df"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    if extra is not None:
        provider.add_span_processor(extra)
    nt = NodeTracing(provider, "node-x", "df", "m1")
    assert (nt._lean is not None) == lean
    sent = scenario(nt, provider.get_tracer("user"))
    nt.close()
    monkeypatch.undo()
    return list(exporter.get_finished_spans()), sent, nt


def _normalize(spans: list[ReadableSpan], sent: list[str]) -> tuple[list[tuple[Any, ...]], list[Any]]:
    spans = sorted(spans, key=lambda s: s.start_time)
    labels: dict[int, str] = {}
    for s in spans:
        labels[s.context.span_id] = f"{s.name}#{sum(1 for v in labels.values() if v.startswith(s.name + '#'))}"
    for text in (EXTERNAL, UNSAMPLED, OTHER):
        labels[int(decode_context(text)["traceparent"].split("-")[2], 16)] = text[15:20]
    traces: dict[int, int] = {}

    def label(context: SpanContext | None) -> Any:
        if context is None:
            return None
        return (
            labels.get(context.span_id, "not exported"),
            traces.setdefault(context.trace_id, len(traces)),
            context.is_remote,
        )

    out = []
    for s in spans:
        events = [(e.name, {k: v for k, v in e.attributes.items() if k != "exception.stacktrace"}) for e in s.events]
        out.append(
            (
                labels[s.context.span_id],
                s.kind,
                list(s.attributes.items()),
                label(s.parent),
                label(s.context),
                s.context.trace_flags,
                dict(s.context.trace_state),
                (s.status.status_code, s.status.description),
                events,
                [(label(link.context), dict(link.attributes or {})) for link in s.links],
                s.dropped_attributes,
                s.dropped_events,
                s.dropped_links,
                dict(s.resource.attributes),
                s.instrumentation_scope,
                s.start_time <= s.end_time,
            )
        )
    # what went out in the metadata, read back with the official propagator
    propagator = TraceContextTextMapPropagator()
    texts = []
    for text in sent:
        context = trace.get_current_span(propagator.extract(decode_context(text))).get_span_context()
        texts.append((label(context), context.trace_flags, dict(context.trace_state), text == format_context(context)))
    return out, texts


def test_lean_spans_export_what_start_span_does(monkeypatch: pytest.MonkeyPatch) -> None:
    lean, lean_sent, _ = _run(True, monkeypatch)
    sdk, sdk_sent, _ = _run(False, monkeypatch)
    assert len(lean) == len(sdk) == 16
    lean_spans, lean_texts = _normalize(lean, lean_sent)
    sdk_spans, sdk_texts = _normalize(sdk, sdk_sent)
    for got, expected in zip(lean_spans, sdk_spans):
        assert got == expected
    assert lean_texts == sdk_texts
    # spot checks of the rules themselves
    by_label = {s[0]: s for s in lean_spans}
    assert by_label["node-x/a#0"][3] == ("0af76", 1, True)  # the input's context is the parent
    assert by_label["node-x/a#0"][6] == {"rojo": "00f067aa0ba902b7"}
    assert by_label["user-work#0"][3][0] == "node-x/a#0"
    assert by_label["node-x/out#2"][3][0] == "node-x/a#0"
    assert by_label["node-x/out2#0"][3][0] == "node-x/a#0"
    # fan-in: links to the latest of the other inputs (b's was not sampled, so not exported)
    assert [link[0][0] for link in by_label["node-x/out#3"][9]] == ["node-x/tick#0", "not exported"]
    assert all(t[1] in (0, 1, 3) for t in lean_texts) and lean_texts[4][1] == 0  # the unsampled trace stays unsampled
    assert all(t[3] for t in lean_texts)


@pytest.mark.parametrize("extra", [False, True])
def test_single_input_spans_export_what_start_span_does(monkeypatch: pytest.MonkeyPatch, extra: bool) -> None:
    lean, lean_sent, _ = _run(True, monkeypatch, _Recorder() if extra else None, _single_input)
    sdk, sdk_sent, _ = _run(False, monkeypatch, _Recorder() if extra else None, _single_input)
    assert len(lean) == len(sdk) == 22  # 4 per input (the unsampled one: 1, its send with OTHER) + the last root
    assert _normalize(lean, lean_sent) == _normalize(sdk, sdk_sent)
    assert {frozenset(s.context.trace_state.items()) for s in lean} == {
        frozenset(),
        frozenset({("rojo", "00f067aa0ba902b7")}),
    }


class _Recorder(SpanProcessor):
    def __init__(self) -> None:
        self.started: list[str] = []
        self.ended: list[str] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.started.append(span.name)

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span.name)


def test_with_another_processor_spans_go_through_it(monkeypatch: pytest.MonkeyPatch) -> None:
    lean_rec, sdk_rec = _Recorder(), _Recorder()
    lean, lean_sent, _ = _run(True, monkeypatch, lean_rec)
    sdk, sdk_sent, _ = _run(False, monkeypatch, sdk_rec)
    assert _normalize(lean, lean_sent) == _normalize(sdk, sdk_sent)
    assert sorted(lean_rec.started) == sorted(sdk_rec.started) and len(lean_rec.started) >= 16
    assert sorted(lean_rec.ended) == sorted(sdk_rec.ended)
    exporter = InMemorySpanExporter()
    _run(True, monkeypatch, SimpleSpanProcessor(exporter))
    assert len(exporter.get_finished_spans()) == 16


def test_spans_reach_the_exporter_without_close() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "n"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    nt = NodeTracing(provider, "n", "df", "m")
    try:
        nt.on_event(_event("a", EXTERNAL))
        nt.on_send("out", None, 1)
        nt.on_event({"type": "STOP", "id": "MANUAL", "value": None, "metadata": {}})
        deadline = time.monotonic() + 10
        while len(exporter.get_finished_spans()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(s.name for s in exporter.get_finished_spans()) == ["n/a", "n/out"]
        assert any(t.name == "dora-otel-spans" for t in threading.enumerate())
    finally:
        nt.close()
    assert not any(
        t.name == "dora-otel-spans" and t.is_alive() for t in threading.enumerate() if t is nt._lean.feeder.thread
    )


def test_falls_back_to_start_span_with_another_sampler() -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    nt = NodeTracing(provider, "n", "df", "m")
    assert nt._lean is None
    nt.on_event(_event("a", UNSAMPLED))
    text = nt.on_send("out", None, 1)[KEY]
    nt.close()
    assert text.endswith("-01")  # ALWAYS_ON samples even under an unsampled parent
    assert len(exporter.get_finished_spans()) == 2


def test_a_span_context_is_worked_out_once_across_threads() -> None:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    nt = NodeTracing(provider, "n", "df", "m")
    try:
        for _ in range(200):
            span = nt._lean.consume("n/a", EXTERNAL, {})
            seen: list[SpanContext] = []

            def ask(span: Any = span, seen: list[SpanContext] = seen) -> None:
                seen.append(span.get_span_context())

            threads = [threading.Thread(target=ask) for _ in range(4)]
            for t in threads:
                t.start()
            seen.append(span.get_span_context())
            for t in threads:
                t.join()
            assert len({c.span_id for c in seen}) == 1 and len(seen) == 5 and seen[0].trace_flags == TraceFlags(1)
            span.end()
    finally:
        nt.close()
