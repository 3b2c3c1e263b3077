"""A node that stops with the dataflow does not wait 5 s for subscribers that cannot take its data.

A publisher closes with a 5 s linger so that live subscribers still get what is queued. When
the whole dataflow is being stopped, its subscribers are stopping too and nothing they have not
read yet will be handed to them: waiting the linger out only delays the node's exit. In libzmq
4.3.5 it also happens, at random, for a subscriber that leaves at the moment the publisher
closes (README, "Deadlines"), which made about one Ctrl-C in 25-100 take 5 s longer. Here the
subscriber is frozen (SIGSTOP), so the queue cannot drain and the old wait is certain.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from dora_zmq.testing import write_dataflow

_SOURCE = """
import os
import pyarrow as pa
from dora_zmq import Node

node = Node()
print("source READY", os.getpid(), flush=True)
value = pa.array(bytes(32768), type=pa.uint8())  # copied through the socket (below shared memory's threshold)
sent = 0
while True:
    for _ in range(200):
        node.send_output("data", value)
    sent += 200
    if sent % 2000 == 0:
        print("source SENT", sent, flush=True)
    event = node.next(timeout=0.001)
    if event is not None and event["type"] == "STOP":
        print("source STOP", flush=True)
        break
"""

_SINK = """
import os
from dora_zmq import Node

node = Node()
print("sink READY", os.getpid(), flush=True)
for event in node:
    pass
"""

_FLOW = """
nodes:
  - id: source
    path: source.py
    outputs: [data]
  - id: sink
    path: sink.py
    inputs: {data: source/data}
"""


@pytest.mark.timeout(60)
def test_a_node_stopping_with_the_dataflow_leaves_without_the_publisher_linger(dora, tmp_path: Path) -> None:
    (tmp_path / "source.py").write_text(_SOURCE)
    (tmp_path / "sink.py").write_text(_SINK)
    yml = write_dataflow(tmp_path, _FLOW)
    p = dora("run", str(yml), "--grace-duration", "8")
    source_pid = int(p.wait_for_line(r"^source source READY \d+$").split()[-1])
    sink_pid = int(p.wait_for_line(r"^sink sink READY \d+$").split()[-1])
    os.kill(sink_pid, signal.SIGSTOP)  # its socket fills: what the source sends now stays queued
    try:
        p.wait_for_line(r"^source source SENT \d+$")
        p.wait_for_line(r"^source source SENT \d+$")  # at least 2,000 more queued for the frozen sink
        stopped_at = time.monotonic()
        p.send_signal(signal.SIGINT)  # STOP to every node
        p.wait_for_line(r"^source source STOP$")
        source = psutil.Process(source_pid)
        try:
            source.wait(10)
        except psutil.TimeoutExpired:
            pass
        left_after = time.monotonic() - stopped_at
    finally:
        os.kill(sink_pid, signal.SIGCONT)
    result = p.wait(30)
    assert not source.is_running(), "the source never left"
    # Before: 5 s and more (the publisher's linger, spent on a queue nobody would read).
    assert left_after < 2.5, f"the source left {left_after:.1f} s after STOP"
    assert result.returncode in (0, 1), result.output  # (the frozen sink may miss its grace period)
