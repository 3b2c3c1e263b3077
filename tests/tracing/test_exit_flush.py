"""Every span reaches the collector when nodes end right after their last message.

A source sends a burst and ends; a relay forwards; a sink leaves its loop on the last
message and exits without ``close()``: its last input span is still open, and the spans of
the burst are still waiting for the feeding thread. The interpreter's exit must end, hand
over and export all of them.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import pytest

from .otlp_receiver import OtlpReceiver

N = 400

GRAPH = """
nodes:
  - id: source
    path: source.py
    outputs: [out]
  - id: relay
    path: relay.py
    inputs: {in: {source: source/out, queue_size: 1000}}
    outputs: [out]
  - id: sink
    path: sink.py
    inputs: {in: {source: relay/out, queue_size: 1000}}
"""

FILES = {
    "source.py": f"""
        from dora_zmq import Node
        node = Node()
        for i in range({N}):
            node.send_output("out", bytes([i % 256]) * 8)
    """,
    "relay.py": """
        from dora_zmq import Node
        node = Node()
        for event in node:
            if event["type"] == "INPUT":
                node.send_output("out", event["value"], event["metadata"])
    """,
    "sink.py": f"""
        from dora_zmq import Node
        node = Node()
        n = 0
        for event in node:
            if event["type"] == "INPUT":
                n += 1
                if n == {N}:
                    break  # and exit at once: no close(), no further next()
        print("sink received", n, flush=True)
    """,
}


@pytest.mark.timeout(60)
def test_nodes_exiting_at_once_export_every_span(dora, flow_dir: Path) -> None:
    for name, text in FILES.items():
        (flow_dir / name).write_text(textwrap.dedent(text))
    (flow_dir / "dataflow.yml").write_text(GRAPH)
    with OtlpReceiver() as receiver:
        result = dora("run", str(flow_dir / "dataflow.yml"), env=receiver.env()).wait(50)
        assert result.returncode == 0, result.output
        assert f"sink received {N}" in result.stdout, result.output
        spans = list(receiver.spans)  # each node flushed before it exited

    counts = Counter((s.service, s.name) for s in spans)
    assert counts[("source", "source/out")] == N
    assert counts[("relay", "relay/in")] == N and counts[("relay", "relay/out")] == N
    assert counts[("sink", "sink/in")] == N, counts
    by_id = {s.span_id: s for s in spans}
    chains = set()
    for sink_span in (s for s in spans if s.name == "sink/in"):
        chain, span = [], sink_span
        while span is not None:
            chain.append(span.name)
            span = by_id.get(span.parent_id)
        chains.add(tuple(chain))
    assert chains == {("sink/in", "relay/out", "relay/in", "source/out")}
    assert len({s.trace_id for s in spans if s.name == "sink/in"}) == N
