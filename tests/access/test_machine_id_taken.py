"""A second daemon for a machine id whose daemon is alive is refused; the running dataflow is untouched.

Before, the coordinator evicted the live daemon (its nodes reported lost, the dataflow
stopped) and sent the next ``SpawnNodes`` -- with the YAML's ``env:`` -- to the newcomer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dora_zmq.testing import write_dataflow

pytestmark = pytest.mark.timeout(90)

_TICKER = """
from dora_zmq import Node

node = Node()
ticks = 0
for event in node:
    if event["type"] == "INPUT":
        ticks += 1
        print(f"tick {ticks}", flush=True)
    elif event["type"] == "STOP":
        print("ticker stopped:", event["id"], flush=True)
"""


def test_second_daemon_with_a_live_machine_id_is_refused(dora, local_cluster, tmp_path: Path) -> None:
    flow = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: ticker
            path: ticker.py
            inputs: {tick: dora/timer/millis/100}
            deploy: {machine: cam}
        """,
        files={"ticker.py": _TICKER},
    )
    cluster = local_cluster()
    env = cluster.env
    coordinator = cluster.coordinator()
    first = cluster.daemon("--machine-id", "cam", cwd=tmp_path)
    attached = dora("start", str(flow), "--name", "held", "--attach", env=env, cwd=tmp_path)
    attached.wait_for_line("tick")

    second = dora("daemon", "--machine-id", "cam", env=env, cwd=tmp_path).wait(30)
    assert second.returncode != 0, second.output
    assert "machine id 'cam' is taken by a running daemon" in second.stderr, second.output
    assert "stop it first or pick another --machine-id" in second.stderr, second.output

    # Untouched: the first daemon is still the machine's, its node still running.
    listing = dora("list", env=env).wait(20)
    assert "held" in listing.stdout and "running" in listing.stdout, listing.output
    ticks = attached.output.count("tick ")
    attached.wait_for_line(f"tick {ticks + 1}$")  # the node is alive, its output still reaches us
    assert "lost" not in first.output and "lost" not in coordinator.output, coordinator.output

    assert dora("stop", "held", env=env).wait(20).returncode == 0
    result = attached.wait(30)
    assert result.returncode == 0, result.output
    assert "ticker stopped: MANUAL" in result.stdout
    assert dora("destroy", env=env).wait(30).returncode == 0
