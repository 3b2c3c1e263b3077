"""The command-line OTLP receiver prints whole lines, whatever the exporters do concurrently.

``python -m dora_zmq.otlp_receiver PORT`` is Jaeger's stand-in in tests/deploy (the compose
namespace test counts ``span <service> <trace> <name>`` lines per trace). Each export is
handled by its own server thread; when two exports were printed at the same moment, the
line of one could be glued to the last line of the other (``...detector/framespan display
<trace> display/box``), and that span looked lost although it had been received: the compose
test failed about one run in six with "29 == 30" traces, or waiting for a coordinator span.
The receiver's ``main`` must write each export's lines at once, one export at a time.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

THREADS = 8  # exporters posting at the same time (a dataflow's nodes and services at exit)
REQUESTS = 25  # per exporter
SPANS = 4  # per request
LINE = re.compile(r"span svc(\d+) ([0-9a-f]{32}) svc\1/out\d+")


def _request(service: str, first_trace: int) -> bytes:
    """An ``ExportTraceServiceRequest`` body of SPANS spans, each in its own trace."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    attribute = resource_spans.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.name", service
    scope_spans = resource_spans.scope_spans.add()
    for i in range(SPANS):
        span = scope_spans.spans.add()
        span.name = f"{service}/out{i}"
        span.trace_id = (first_trace + i).to_bytes(16, "big")
        span.span_id = (i + 1).to_bytes(8, "big")
    return request.SerializeToString()


@pytest.mark.timeout(60)
def test_concurrent_exports_print_whole_lines(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Unbuffered, as DataflowProcess runs it in the compose test.
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    receiver = subprocess.Popen(
        [sys.executable, "-m", "dora_zmq.otlp_receiver", str(port), "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=tmp_path,
        text=True,
    )
    try:
        assert receiver.stdout is not None
        assert receiver.stdout.readline().strip() == "listening"
        lines: list[str] = []
        reader = threading.Thread(
            target=lambda: lines.extend(line.rstrip("\n") for line in receiver.stdout), daemon=True
        )
        reader.start()

        start = threading.Barrier(THREADS)
        failures: list[BaseException] = []

        def exporter(n: int) -> None:
            try:
                start.wait()
                for r in range(REQUESTS):
                    body = _request(f"svc{n}", (n * REQUESTS + r) * SPANS + 1)
                    post = urllib.request.Request(
                        f"http://127.0.0.1:{port}/v1/traces",
                        data=body,
                        headers={"Content-Type": "application/x-protobuf"},
                    )
                    with urllib.request.urlopen(post, timeout=20) as reply:
                        reply.read()
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        threads = [threading.Thread(target=exporter, args=(n,)) for n in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
        assert not failures, failures
    finally:
        receiver.terminate()
        receiver.wait(10)
    reader.join(10)

    # Every span was printed before its request was answered: all are there, one per line.
    broken = [line for line in lines if not LINE.fullmatch(line)]
    assert not broken, f"{len(broken)} line(s) mixing two exports, e.g. {broken[:3]}"
    assert len(lines) == THREADS * REQUESTS * SPANS
    assert len({line.split()[2] for line in lines}) == THREADS * REQUESTS * SPANS
