"""A daemon exits within a bound after SIGTERM (issue 13): at once with no node running,
after its nodes with them, and a second SIGTERM skips the nodes' grace period."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from dora_zmq.daemon import SHUTDOWN_GRACE_S
from dora_zmq.daemon._supervisor import KILL_AFTER_TERM_S
from dora_zmq.testing import write_dataflow

pytestmark = pytest.mark.timeout(90)

# Ignores STOP (never reads its events after the first tick) and SIGTERM: only SIGKILL ends it.
_STUBBORN = """
import signal, time
from dora_zmq import Node

signal.signal(signal.SIGTERM, signal.SIG_IGN)
node = Node()
node.next()
print("stubborn is running", flush=True)
while True:
    time.sleep(0.1)
"""


def _stack(local_cluster, tmp_path: Path):
    cluster = local_cluster()
    coordinator = cluster.coordinator()
    return cluster.env, coordinator, cluster.daemon(cwd=tmp_path, timeout=60)


def test_an_idle_daemon_exits_at_once_after_sigterm(dora, local_cluster, tmp_path: Path) -> None:
    env, coordinator, daemon = _stack(local_cluster, tmp_path)
    start = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    result = daemon.wait(10)
    took = time.monotonic() - start
    assert result.returncode == 0, result.output
    assert "daemon '' stopped" in result.output, result.output
    assert took < 3.0, f"{took:.1f} s"
    assert dora("destroy", env=env).wait(30).returncode == 0
    coordinator.wait(15)


def test_a_second_sigterm_skips_the_grace_period_of_nodes_that_ignore_stop(dora, local_cluster, tmp_path: Path) -> None:
    flow = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: stubborn
            path: stubborn.py
            inputs: {tick: dora/timer/millis/100}
        """,
        files={"stubborn.py": _STUBBORN},
    )
    env, coordinator, daemon = _stack(local_cluster, tmp_path)
    attached = dora("start", str(flow), "--attach", env=env, cwd=tmp_path)
    attached.wait_for_line("stubborn is running", timeout=60)
    start = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    daemon.wait_for_line(f"stopping: 1 node.s. get {SHUTDOWN_GRACE_S:g} s")  # the first signal was taken
    daemon.send_signal(signal.SIGTERM)
    result = daemon.wait(SHUTDOWN_GRACE_S + 20)
    took = time.monotonic() - start
    assert "daemon '' stopped" in result.output, result.output
    assert "SIGKILL" in result.output, result.output
    # Without the second signal: the 10 s grace, then 2 s to SIGKILL.
    assert took < SHUTDOWN_GRACE_S, f"{took:.1f} s (the grace period was not skipped): {result.output}"
    assert took >= KILL_AFTER_TERM_S - 0.1, f"{took:.1f} s"
    attached.wait(30)
    assert dora("destroy", env=env).wait(30).returncode == 0
    coordinator.wait(15)
