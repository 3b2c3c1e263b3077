"""restart_policy in the daemon, without the reference: a stop calls off a pending restart,
``always`` ends once the node's inputs are closed, and a restarted node keeps its subscribers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dora_zmq.testing import write_dataflow

pytestmark = pytest.mark.timeout(60)

CRASHER = """
import os
from dora_zmq import Node

node = Node()
print("STARTED", node.restart_count(), flush=True)
for event in node:
    if event["type"] == "INPUT":
        raise SystemExit(int(os.environ.get("EXIT_CODE", "3")))
"""

RECORDER = """
import json
from dora_zmq import Node

node = Node()
for event in node:
    print("EVENT " + json.dumps({"type": event["type"], "id": event["id"]}), flush=True)
"""


def test_stop_calls_off_a_pending_restart(dora, tmp_path: Path) -> None:
    flow = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: crasher
            path: crasher.py
            restart_policy: on-failure
            restart_delay: 30
            inputs: {tick: dora/timer/millis/20}
        """,
        files={"crasher.py": CRASHER},
    )
    run = dora("run", str(flow))
    run.wait_for_line(r"restarting it in 30 s \(restart 1 of 10")
    run.interrupt_group()
    result = run.wait(20)
    assert result.seconds < 20
    assert result.returncode == 1, result.output  # the crash stands: it was not restarted
    assert result.output.count("STARTED") == 1, result.output
    assert "node 'crasher' failed (exit code 3)" in result.output, result.output


def test_always_ends_when_inputs_are_closed(dora, tmp_path: Path) -> None:
    """``always`` restarts a node that exits cleanly, but not once its inputs are closed."""
    flow = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: source
            path: source.py
            outputs: [out]
          - id: worker
            path: worker.py
            restart_policy: always
            inputs: {x: source/out}
          - id: sink
            path: recorder.py
            inputs: {x: source/out}
        """,
        files={
            "source.py": """
                import time
                import pyarrow as pa
                from dora_zmq import Node

                node = Node()
                for i in range(3):
                    node.send_output("out", pa.array([i]))
                    time.sleep(0.5)  # the worker exits meanwhile, and is started again
            """,
            "worker.py": """
                from dora_zmq import Node

                node = Node()
                print("WORKER", node.restart_count(), flush=True)
                for event in node:
                    if event["type"] == "INPUT":
                        break  # exits cleanly after each message: `always` starts it again
            """,
            "recorder.py": RECORDER,
        },
    )
    result = dora("run", str(flow)).wait(40)
    assert result.returncode == 0, result.output
    starts = [line for line in result.stdout.splitlines() if "WORKER" in line]
    # restarted after its first clean exit (the source still runs), at most once per message,
    # and not after the last: by then its input is closed
    assert 2 <= len(starts) <= 4, result.output
    assert "restart_policy" in result.output
    events = [json.loads(line.split("EVENT ", 1)[1]) for line in result.stdout.splitlines() if "EVENT " in line]
    assert [e["type"] for e in events] == ["INPUT"] * 3 + ["INPUT_CLOSED", "STOP"], result.output
