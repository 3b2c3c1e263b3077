"""A busy machine is not taken for a dead one (issue 13, point 4).

One source and 50 (or 100) sinks started by ``dora-zmq run`` with default settings: starting
that many Python processes on 2 cores used to hold the daemon's loop for seconds (every spawn
waits for its child to get a CPU and exec), its heartbeats stopped, and after 3 s the
coordinator -- in the same process -- failed every node with "daemon ... lost (no heartbeat
for 3 s)". On main before this change the 100-node run failed 3 of 3 (in 8 s) here, and the
50-node one whenever the machine was loaded.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dora_zmq.testing import write_dataflow

_VALUES = 5

_SOURCE = f"""
import pyarrow as pa
from dora_zmq import Node

node = Node()
sent = 0
for event in node:
    if event["type"] == "INPUT":
        node.send_output("value", pa.array([sent]))
        sent += 1
        if sent == {_VALUES}:
            break
"""

_SINK = """
from dora_zmq import Node

node = Node()
received = 0
for event in node:
    if event["type"] == "INPUT":
        received += 1
print(f"received {received}", flush=True)
"""


def _fan_out(directory: Path, sinks: int) -> Path:
    nodes = [
        "nodes:",
        "  - id: source",
        "    path: source.py",
        "    inputs: {tick: dora/timer/millis/50}",
        "    outputs: [value]",
    ]
    for i in range(sinks):
        nodes += [f"  - id: sink{i}", "    path: sink.py", "    inputs: {value: source/value}"]
    return write_dataflow(directory, "\n".join(nodes) + "\n", files={"source.py": _SOURCE, "sink.py": _SINK})


def _run_to_completion(dora, directory: Path, sinks: int, timeout_s: float) -> None:
    flow = _fan_out(directory, sinks)
    result = dora("run", str(flow), cwd=directory).wait(timeout_s)
    assert result.returncode == 0, result.output[-4000:]
    assert "lost" not in result.output, result.output[-4000:]
    received = dict(re.findall(r"^(sink\d+)\s+received (\d+)$", result.stdout, re.M))
    assert sorted(received) == sorted(f"sink{i}" for i in range(sinks)), result.output[-4000:]
    # Every sink subscribed before the source sent (the start barrier): nothing lost either.
    assert set(received.values()) == {str(_VALUES)}, received


@pytest.mark.timeout(150)
def test_one_source_and_50_sinks_run_to_completion(dora, tmp_path: Path) -> None:
    _run_to_completion(dora, tmp_path, 50, 140)


@pytest.mark.scale
@pytest.mark.timeout(240)
def test_one_source_and_100_sinks_run_to_completion(dora, tmp_path: Path) -> None:
    _run_to_completion(dora, tmp_path, 100, 230)
