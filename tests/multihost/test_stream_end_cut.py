"""A link cut that overlaps the end of a stream (issue 13): nothing is lost silently, the run ends.

Hosts are network namespaces on a bridge (skipped without root); a 5 s cut outlasts the data
and control links' heartbeat timeout (3 s), so ZeroMQ drops the connection and what was
queued on it: the source's last messages and its end-of-stream marker. Before the fix, cutting
the source's host ended the run "finished" with about 200 of 250 messages missing and
``lost`` 0; cutting the sink's host left the run running for ever (the exit notice to the
sink's daemon was lost with the connection too).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from dora_zmq.testing import write_files

from .cluster import Cluster

pytestmark = pytest.mark.netns

SENT = 250

SOURCE = """
    import pyarrow as pa
    from dora_zmq import Node
    node = Node()
    sent = 0
    for event in node:
        if event["type"] == "INPUT" and event["id"] == "tick":
            node.send_output("n", pa.array([sent], type=pa.int64()))
            sent += 1
            if sent == 250:
                break
    print("source sent", sent, flush=True)
"""

SINK = """
    from dora_zmq import Node
    node = Node()
    n = 0
    for event in node:
        if event["type"] == "INPUT":
            n += 1
            if n == 20:
                print("sink got 20", flush=True)
    print(f"sink total {n} lost {node.lost.get('n', 0)}", flush=True)
"""

FLOW = """
nodes:
  - id: source
    path: source.py
    deploy: {{machine: {source}}}
    inputs: {{tick: dora/timer/millis/10}}
    outputs: [n]
  - id: sink
    path: sink.py
    deploy: {{machine: {sink}}}
    inputs: {{n: {{source: source/n, queue_size: 1000}}}}
"""

# After the link returns: reconnecting (about 1 s), a heartbeat (0.5 s), the tail wait (1 s).
# Measured 1.2-1.7 s typically, up to 7 s on a loaded machine (3 engineers' tests on 2 cores).
ENDS_WITHIN_S = 20.0


@pytest.mark.timeout(90)
@pytest.mark.parametrize("cut", ["source", "sink"])
def test_cut_over_the_end_of_a_stream_counts_the_tail_and_ends(network, dora, tmp_path: Path, cut: str) -> None:
    h1, h2 = network.add_host("h1"), network.add_host("h2")
    # h2 is cut; the coordinator lives on h1. "source": the sender's host is cut (the tail
    # and its marker are lost); "sink": the receiver's host is cut (the exit notice too).
    placement = {"source": "h2", "sink": "h1"} if cut == "source" else {"source": "h1", "sink": "h2"}
    write_files(tmp_path, {"source.py": SOURCE, "sink.py": SINK, "dataflow.yml": FLOW.format(**placement)})
    cluster = Cluster(network, dora, tmp_path, env={"DORA_ZMQ_DAEMON_TIMEOUT": "30"})  # the machine outlives the cut
    cluster.start_coordinator(h1)
    cluster.start_daemon(h1)
    cluster.start_daemon(h2)
    run = cluster.cli(h1, "start", "dataflow.yml", "--attach")
    run.wait_for_line(r"sink got 20", timeout=40)
    network.cut(h2)
    time.sleep(5.0)  # the outage itself (the source ends during it), not a synchronisation
    network.restore(h2)
    restored = time.monotonic()
    line = run.wait_for_line(r"sink total", timeout=ENDS_WITHIN_S)
    result = run.wait(ENDS_WITHIN_S)
    took = time.monotonic() - restored
    print(f"cut {cut}: ended {took:.1f} s after the link returned")
    assert result.returncode == 0, result.output
    assert took < ENDS_WITHIN_S, result.output
    total, lost = map(int, re.search(r"sink total (\d+) lost (\d+)", line).groups())  # type: ignore[union-attr]
    assert total + lost == SENT, result.output
    assert lost > 0, f"a 5 s cut over the end should lose the tail: {result.output}"
    assert f"sink/n: {lost}" in result.stderr, result.output  # the closing report
    listed = cluster.cli(h1, "list", "--format", "json").wait(20)
    runs = json.loads(listed.stdout)["dataflows"]
    assert [r["lost"] for r in runs if r["status"] == "finished"] == [{"sink/n": lost}], listed.output
    print(f"cut {cut}: received {total}, lost {lost}; ended {took:.1f} s after the link returned")
