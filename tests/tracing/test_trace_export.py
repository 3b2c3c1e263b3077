"""Traces end to end: a real OTLP/HTTP receiver, a 4-node graph, one trace per source message."""

from __future__ import annotations

import os
import textwrap
import threading
from pathlib import Path

import pytest

from .otlp_receiver import OtlpReceiver

N = 5

GRAPH = """
nodes:
  - id: source
    path: source.py
    inputs: {tick: dora/timer/millis/30, ready: fuse/ready}
    outputs: [frame]
  - id: detector
    operator:
      python: detector.py
      inputs: {frame: source/frame}
      outputs: [det]
  - id: fuse
    path: fuse.py
    inputs:
      det: detector/det
      frame: source/frame
    outputs: [fused, ready]
  - id: sink
    path: sink.py
    inputs: {fused: fuse/fused}
"""

FILES = {
    "source.py": f"""
        from dora_zmq import Node
        node = Node()
        sent = 0
        ready = False  # the fan-in node is receiving (else all of its inputs may be waiting
        # in its socket when it starts, and it may read one input's before the other's)
        for event in node:
            if event["type"] == "INPUT" and event["id"] == "ready":
                ready = True
            elif event["type"] == "INPUT" and ready:
                node.send_output("frame", bytes([sent]) * 16)  # no metadata: parent = the tick
                sent += 1
                if sent == {N}:
                    break
    """,
    "detector.py": """
        from opentelemetry import trace
        from dora_zmq import DoraStatus

        class Operator:
            def on_event(self, dora_event, send_output):
                if dora_event["type"] == "INPUT":
                    # a user's own span nests under the input being handled
                    with trace.get_tracer("user").start_as_current_span("user-work"):
                        pass
                    send_output("det", dora_event["value"], dora_event["metadata"])
                return DoraStatus.CONTINUE
    """,
    "fuse.py": """
        from dora_zmq import Node
        node = Node()
        node.send_output("ready", b"")
        for event in node:
            if event["type"] == "INPUT" and event["id"] == "det":
                node.send_output("fused", event["value"], event["metadata"])
    """,
    "sink.py": """
        from dora_zmq import Node
        n = sum(1 for e in Node() if e["type"] == "INPUT")
        print("sink received", n)
    """,
}


def _write_graph(dir_: Path) -> Path:
    for name, text in FILES.items():
        (dir_ / name).write_text(textwrap.dedent(text))
    (dir_ / "dataflow.yml").write_text(GRAPH)
    return dir_ / "dataflow.yml"


@pytest.mark.timeout(60)
def test_one_trace_per_source_message(dora, flow_dir: Path) -> None:
    yml = _write_graph(flow_dir)
    with OtlpReceiver() as receiver:
        result = dora("run", str(yml), env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}).wait(40)
        assert result.returncode == 0, result.output
        assert f"sink received {N}" in result.stdout
        # every node flushes at exit, so everything is there once run has returned
        spans = list(receiver.spans)

    by_id = {s.span_id: s for s in spans}
    services = {s.service for s in spans}
    assert {"source", "detector", "fuse", "sink"} <= services, services

    sink_spans = [s for s in spans if s.service == "sink" and s.name == "sink/fused"]
    assert len(sink_spans) == N
    traces = {s.trace_id for s in sink_spans}
    assert len(traces) == N, "one trace per source message"

    for sink_span in sink_spans:
        chain = []
        span = sink_span
        while span is not None:
            chain.append((span.service, span.name))
            span = by_id.get(span.parent_id)
        assert chain == [
            ("sink", "sink/fused"),
            ("fuse", "fuse/fused"),
            ("fuse", "fuse/det"),
            ("detector", "detector/op/det"),
            ("detector", "detector/op/frame"),
            ("source", "source/frame"),
            ("source", "source/tick"),
        ], chain

    fused = [s for s in spans if s.name == "fuse/fused"]
    # Fan-in: an output links the latest message of the other input. The very first `det`
    # may arrive before any `frame` (two paths from the source race), so allow one without.
    linked = [s for s in fused if s.links]
    assert len(linked) >= N - 1, "the fan-in output links the other input"
    frame_spans = {s.span_id for s in spans if s.name == "fuse/frame"}
    assert all(span_id in frame_spans for s in linked for _, span_id in s.links)
    user = [s for s in spans if s.name == "user-work"]
    assert len(user) == N
    assert all(by_id[u.parent_id].name == "detector/op/frame" for u in user)
    node_spans = [s for s in spans if s.service in {"source", "detector", "fuse", "sink"} and s.name != "user-work"]
    assert all(s.attributes.get("dora.node_id") == s.service for s in node_spans)
    assert all(s.attributes.get("dora.dataflow_id") for s in node_spans)

    # lifecycle: the coordinator's start span parents the daemon's spawn spans
    start = [s for s in spans if s.name.startswith("start dataflow")]
    assert len(start) == 1
    spawns = [s for s in spans if s.name.startswith("spawn node")]
    assert {s.name for s in spawns} == {f"spawn node {n}" for n in ("source", "detector", "fuse", "sink")}
    assert all(s.parent_id == start[0].span_id for s in spawns)


RECOVERY_GRAPH = """
nodes:
  - id: source
    path: source.py
    inputs: {tick: dora/timer/millis/20}
    outputs: [frame]
  - id: sink
    path: sink.py
    inputs: {frame: source/frame}
"""

RECOVERY_SOURCE = """
    from pathlib import Path
    from dora_zmq import Node
    node = Node()
    up = Path({flag!r})  # the test makes it once the collector is back
    sent = 0
    for event in node:
        if event["type"] != "INPUT" or (sent == {n} and not up.exists()):
            continue  # (ticks go on meanwhile: their spans wait for export too)
        node.send_output("frame", bytes([sent]) * 16)  # no metadata: parent = the tick
        sent += 1
        if sent == {n}:
            print("first half sent", flush=True)
        if sent == 2 * {n}:
            break
"""

RECOVERY_SINK = """
    from dora_zmq import Node
    received = traced = 0
    for event in Node():
        if event["type"] == "INPUT":
            received += 1
            traced += (event["metadata"] or {}).get("open_telemetry_context", "").startswith("traceparent:00-")
    print(f"sink received {received}, traced {traced}", flush=True)
"""


@pytest.mark.timeout(90)
def test_a_dead_collector_costs_no_messages_and_tracing_resumes_when_it_is_back(dora, flow_dir: Path) -> None:
    """With the collector down, messages flow and stay traced; the spans of the failed requests
    are dropped, reported (not once per span); once it is back, the spans made since arrive."""
    import socket

    with socket.socket() as s:  # a port nothing listens on (yet)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    flag = flow_dir / "collector-up"
    (flow_dir / "dataflow.yml").write_text(RECOVERY_GRAPH)
    (flow_dir / "source.py").write_text(textwrap.dedent(RECOVERY_SOURCE.format(flag=str(flag), n=N)))
    (flow_dir / "sink.py").write_text(textwrap.dedent(RECOVERY_SINK))
    run = dora("run", str(flow_dir / "dataflow.yml"), env={"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"})
    run.wait_for_line("first half sent", timeout=40)
    # the sink's first request (its first 4 spans: the 5th ends with the next message) failed
    report = run.wait_for_line(r"^sink tracing: could not export \d+ spans", timeout=30)
    lost = int(report.split("could not export ")[1].split()[0])
    with OtlpReceiver(port=port) as receiver:
        flag.touch()
        result = run.wait(40)
        spans = list(receiver.spans)
    assert result.returncode == 0, result.output
    assert f"sink received {2 * N}, traced {2 * N}" in result.stdout  # no message lost, each one traced
    # dropped spans are reported per request, at most every 30 s: not a line per span
    reports = [line for line in result.output.splitlines() if "tracing: could not export" in line]
    assert 1 <= len(reports) <= 2, reports  # (the sink's, and maybe the source's)
    # the spans of the failed request never arrive; those made since the collector is back do,
    # every hop of each message
    sink_spans = [s for s in spans if s.name == "sink/frame"]
    assert lost >= 1 and N <= len(sink_spans) <= 2 * N - lost, (lost, len(sink_spans))
    by_id = {s.span_id: s for s in spans}
    chains = []
    for sink_span in sink_spans:
        chain, span = [], sink_span
        while span is not None:
            chain.append(span.name)
            span = by_id.get(span.parent_id)
        chains.append(chain)
    assert sum(c == ["sink/frame", "source/frame", "source/tick"] for c in chains) >= N, chains


def test_tracing_off_adds_no_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from dora_zmq.tracing import setup_tracing, tracing_config

    for var in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_TRACES_EXPORTER",
        "OTEL_SDK_DISABLED",
    ):
        monkeypatch.delenv(var, raising=False)
    before = threading.active_count()
    fds = len(os.listdir("/proc/self/fd"))
    assert tracing_config() is None
    assert setup_tracing("n") is None
    assert threading.active_count() == before
    assert len(os.listdir("/proc/self/fd")) == fds  # no exporter socket either
    assert tracing_config({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_SDK_DISABLED": "true"}) is None
    assert tracing_config({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}) is None
    assert tracing_config({"OTEL_TRACES_EXPORTER": "console"}).exporter == "console"


def test_context_codec_reads_both_separators() -> None:
    from dora_zmq.tracing import decode_context, encode_context

    carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "a=1"}
    assert decode_context(encode_context(carrier)) == carrier
    assert decode_context(";".join(f"{k}:{v}" for k, v in carrier.items())) == carrier


THREADS_FLOW = """
nodes:
  - id: probe
    path: probe.py
"""

PROBE = """
    import threading
    from dora_zmq import Node
    node = Node()
    print("threads:", sorted(t.name for t in threading.enumerate()), flush=True)
"""


@pytest.mark.timeout(60)
def test_a_node_without_otel_settings_starts_no_exporter(dora, flow_dir: Path) -> None:
    (flow_dir / "dataflow.yml").write_text(THREADS_FLOW)
    (flow_dir / "probe.py").write_text(textwrap.dedent(PROBE))
    clean = {
        k: "" for k in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER")
    }
    off = dora("run", str(flow_dir / "dataflow.yml"), env=clean).wait(40)
    assert off.returncode == 0, off.output
    with OtlpReceiver() as receiver:
        on = dora("run", str(flow_dir / "dataflow.yml"), env={**clean, **receiver.env()}).wait(40)
    assert on.returncode == 0, on.output
    line_off = next(line for line in off.stdout.splitlines() if "threads:" in line)
    line_on = next(line for line in on.stdout.splitlines() if "threads:" in line)
    assert "otel" not in line_off.lower(), line_off
    assert "otel" in line_on.lower(), line_on  # the check can tell: with tracing there is one
