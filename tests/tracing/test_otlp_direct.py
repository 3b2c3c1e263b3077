"""Spans written straight to OTLP bytes (``_otlp.OtlpDirect``) are what the SDK's encoder writes.

With an OTLP/HTTP exporter, a node's finished spans skip the ``ReadableSpan`` s, the batch
processor and the exporter's encoder. Here every request a collector receives is parsed and
compared, span by span, with the SDK's ``encode_spans`` of the ``ReadableSpan`` s of the same
spans (which test_node_spans and test_lean_paths compare with ``tracer.start_span`` 's).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pyarrow as pa
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dora_zmq.tracing import NodeTracing, _otlp

from .test_lean_paths import TEXTS, _relay
from .test_node_spans import KEY, _event, _scenario, _single_input


class _Collector:
    """A local OTLP/HTTP endpoint keeping every request body (or failing them all)."""

    def __init__(self, status: int = 200, port: int = 0) -> None:
        self.bodies: list[bytes] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                collector.bodies.append(body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}/v1/traces"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def requests(self) -> list[ExportTraceServiceRequest]:
        out = []
        for body in self.bodies:
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            out.append(request)
        return out


def _provider(collector: _Collector, **bsp: Any) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "node-x", "dora.dataflow_id": "df"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=collector.endpoint, timeout=2), **bsp))
    return provider


def _run_direct(
    monkeypatch: pytest.MonkeyPatch, scenario: Any
) -> tuple[list[ExportTraceServiceRequest], list[Any], _Collector]:
    """Run ``scenario`` with direct encoding; returns the requests and the ReadableSpans of the same spans."""
    readables: list[Any] = []
    add = _otlp.OtlpDirect.add

    def recording_add(self: _otlp.OtlpDirect, finished: Any) -> None:
        add(self, finished)
        readable = self._readable(finished)  # after add: the same ids (a span's context is worked out once)
        if readable is not None:
            readables.append(readable)

    monkeypatch.setattr(_otlp.OtlpDirect, "add", recording_add)
    collector = _Collector()
    try:
        provider = _provider(collector)
        nt = NodeTracing(provider, "node-x", "df", "m1")
        assert nt._lean is not None and nt._lean.direct is not None
        scenario(nt, provider.get_tracer("user"))
        nt.close()
        return collector.requests(), readables, collector
    finally:
        collector.close()


def _spans(requests: list[ExportTraceServiceRequest], scope: str = "dora_zmq") -> dict[bytes, Any]:
    out = {}
    for request in requests:
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                if ss.scope.name == scope:
                    for span in ss.spans:
                        assert span.span_id not in out
                        out[span.span_id] = span
    return out


@pytest.mark.parametrize(
    "scenario", [_scenario, _single_input, _relay(TEXTS)], ids=["scenario", "single-input", "relay"]
)
def test_direct_requests_hold_what_the_sdk_encodes(monkeypatch: pytest.MonkeyPatch, scenario: Any) -> None:
    requests, readables, _ = _run_direct(monkeypatch, scenario)
    got = _spans(requests)
    expected = _spans([encode_spans(readables)])
    assert len(got) == len(expected) >= 14
    for span_id, span in expected.items():
        assert got[span_id] == span, span.name
    # the resource and the scope are the SDK's too
    reference = encode_spans(readables[:1]).resource_spans[0]
    ours = [rs for request in requests for rs in request.resource_spans if rs.scope_spans[0].scope.name == "dora_zmq"]
    assert ours and all(rs.resource == reference.resource and rs.schema_url == reference.schema_url for rs in ours)
    assert all(rs.scope_spans[0].scope == reference.scope_spans[0].scope for rs in ours)
    # the user's own spans still go through the batch processor, to the same collector
    if scenario is _scenario:
        assert {s.name for s in _spans(requests, "user").values()} == {"user-work", "user-outer"}


def test_a_burst_goes_out_whole_in_few_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    value = pa.array([0] * 8, pa.uint8())

    def burst(nt: NodeTracing, user: Any) -> None:
        for i in range(10_000):
            ev = _event("in", TEXTS[0], value)
            nt.on_event(ev)
            nt.on_send("out", ev["metadata"], i)
        nt.on_event({"type": "STOP", "id": "MANUAL", "value": None, "metadata": {}})

    monkeypatch.setattr(_otlp.OtlpDirect, "add", _otlp.OtlpDirect.add)  # (no recording)
    collector = _Collector()
    try:
        provider = _provider(collector)
        nt = NodeTracing(provider, "node-x", "df", "m1")
        burst(nt, None)
        nt.close()
        requests = collector.requests()
    finally:
        collector.close()
    spans = _spans(requests)
    assert len(spans) == 20_000
    assert len(requests) <= 8
    assert all(
        sum(len(ss.spans) for rs in r.resource_spans for ss in rs.scope_spans) <= _otlp._EXPORT_AT for r in requests
    )
    size_key = "messaging.message.body.size"
    sizes = sorted(
        next(a.value.int_value for a in s.attributes if a.key == size_key) for s in spans.values() if s.kind == 4
    )
    assert sizes == list(range(10_000))


def test_spans_go_out_within_a_few_seconds_without_close() -> None:
    collector = _Collector()
    nt = None
    try:
        nt = NodeTracing(_provider(collector), "node-x", "df", "m1")
        nt.on_event(_event("a", TEXTS[0]))
        nt.on_send("out", None, 1)
        nt.on_event({"type": "STOP", "id": "MANUAL", "value": None, "metadata": {}})
        deadline = time.monotonic() + 10
        while len(_spans(collector.requests())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(s.name for s in _spans(collector.requests()).values()) == ["node-x/a", "node-x/out"]
    finally:
        if nt is not None:
            nt.close()
        collector.close()


def test_a_processor_added_later_gets_every_span_from_then_on() -> None:
    collector = _Collector()
    try:
        provider = _provider(collector)
        nt = NodeTracing(provider, "node-x", "df", "m1")
        nt.on_event(_event("a", TEXTS[0]))
        nt.on_send("out", None, 1)
        nt._lean.feed(True)
        memory = InMemorySpanExporter()
        provider.add_span_processor(BatchSpanProcessor(memory))
        nt.on_event(_event("a", TEXTS[0]))
        nt.on_send("out", None, 2)
        nt.close()
        assert nt._lean.direct is None
        # the first send went out directly; the first input span ended after the processor came
        assert len(_spans(collector.requests())) == 4
        assert sorted(s.name for s in memory.get_finished_spans()) == ["node-x/a", "node-x/a", "node-x/out"]
    finally:
        collector.close()


def test_a_failing_collector_is_reported_now_and_then(caplog: pytest.LogCaptureFixture) -> None:
    collector = _Collector(status=400)  # not retried
    try:
        nt = NodeTracing(_provider(collector), "node-x", "df", "m1")
        nt.on_event(_event("a", TEXTS[0]))
        sent = nt.on_send("out", None, 1)[KEY]
        nt._lean.feed(True)
        nt.on_event(_event("a", TEXTS[0]))  # (ends the first input's span)
        nt._lean.feed(True)
        nt.close()
        assert sent.startswith("traceparent:00-")
        assert len(collector.bodies) == 3
        warnings = [r.getMessage() for r in caplog.records if "could not export" in r.getMessage()]
        assert len(warnings) == 1 and "could not export 1 spans" in warnings[0]  # the next ones in 30 s
        assert nt._lean.direct._lost == 2
    finally:
        collector.close()


def test_a_dead_collector_drops_and_counts_what_failed_keeps_nothing_and_gets_what_follows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on (yet)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = TracerProvider(resource=Resource.create({"service.name": "node-x"}))
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=1)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    nt = NodeTracing(provider, "node-x", "df", "m1")
    collector = None
    try:
        direct = nt._lean.direct
        assert direct is not None
        for i in range(3):  # 3 messages in, 3 out: the first 2 input spans end here, the third later
            nt.on_event(_event("a", TEXTS[0]))
            assert nt.on_send("out", None, i)[KEY].startswith("traceparent:00-")
        nt._lean.feed(True)  # the request fails (connection refused, after the exporter's retries)
        assert direct.pending() == 0  # dropped: nothing kept for later ...
        reports = [r.getMessage() for r in caplog.records if "tracing: could not export" in r.getMessage()]
        assert len(reports) == 1 and "could not export 5 spans" in reports[0]  # ... and counted
        collector = _Collector(port=port)
        nt.on_event(_event("b", TEXTS[0]))
        nt.on_send("out", None, 9)
        nt.close()
        got = sorted(s.name for s in _spans(collector.requests()).values())
        assert got == ["node-x/a", "node-x/b", "node-x/out"]  # what ended once it was back
    finally:
        if collector is not None:
            collector.close()
        else:
            nt.close()


def test_other_exporters_keep_the_batch_processor() -> None:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    nt = NodeTracing(provider, "n", "df", "m")
    try:
        assert nt._lean is not None and nt._lean.direct is None
    finally:
        nt.close()


def test_the_encoders_span_id_is_the_contexts_whoever_asks_first() -> None:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    nt = NodeTracing(provider, "n", "df", "m")
    try:
        for i in range(300):
            span = nt._lean.consume("n/a", TEXTS[0], {})
            seen: list[int] = []

            def context(span: Any = span, seen: list[int] = seen) -> None:
                seen.append(span.get_span_context().span_id)

            def plain(span: Any = span, seen: list[int] = seen) -> None:
                ids = span.dora_plain_ids()  # (None once the context was worked out)
                seen.append(span.get_span_context().span_id if ids is None else ids[1])

            threads = [threading.Thread(target=(context, plain)[(i + k) % 2]) for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            ids = set(seen) | {span.get_span_context().span_id}
            assert len(seen) == 4 and len(ids) == 1
            assert span.dora_plain_ids() is None or span.dora_plain_ids()[1] in ids
            span.end()
    finally:
        nt.close()
