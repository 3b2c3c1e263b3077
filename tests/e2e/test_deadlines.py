"""Every phase has a deadline (issue 13): a daemon that never confirms cannot hold a dataflow.

A real coordinator and CLI; the daemon of machine ``mute`` is this test: it registers, beats,
and confirms only what the test makes it confirm, as a daemon whose reports are lost would.
The deadlines are shortened through their environment variables.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
import time
from pathlib import Path
from typing import Any

from dora_zmq import _control as ctl
from dora_zmq._transport import Channel
from dora_zmq._version import __version__
from dora_zmq.testing import free_tcp_address

FLOW = """
nodes:
  - id: muted
    path: node.py
    deploy: {machine: mute}
"""

START_S = 2.0
MARGIN_S = 1.0
SLACK_S = 6.0  # CLI start-up, the coordinator's loop, a loaded machine


class MuteDaemon:
    """A daemon for machine ``mute`` that reports nothing by itself (its own thread owns the socket)."""

    def __init__(self, address: str) -> None:
        self.outbox: queue.Queue[Any] = queue.Queue()
        self.spawned: queue.Queue[ctl.SpawnNodes] = queue.Queue()
        self.stops: queue.Queue[ctl.StopNodes] = queue.Queue()
        self.accepted = threading.Event()
        self._dataflows: list[str] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(address,), daemon=True)
        self._thread.start()

    def _serve(self, address: str) -> None:
        channel = Channel.connect(address)
        channel.send(ctl.RegisterDaemon("mute", __version__, ctl.PROTOCOL_VERSION, socket.gethostname(), os.getpid()))
        next_beat = 0.0
        try:
            while not self._done.is_set():
                got = channel.recv(50)
                msg = got[1] if got is not None else None
                if isinstance(msg, ctl.DaemonAccepted):
                    self.accepted.set()
                elif isinstance(msg, ctl.SpawnNodes):
                    self._dataflows.append(msg.dataflow_id)
                    self.spawned.put(msg)
                elif isinstance(msg, ctl.StopNodes):
                    self.stops.put(msg)
                while not self.outbox.empty():
                    channel.send(self.outbox.get())
                if self.accepted.is_set() and time.monotonic() >= next_beat:
                    channel.send(ctl.DaemonHeartbeat("mute", {df: [] for df in self._dataflows}))
                    next_beat = time.monotonic() + ctl.HEARTBEAT_INTERVAL_S
        finally:
            channel.close()

    def close(self) -> None:
        self._done.set()
        self._thread.join(5)


def _setup(dora: Any, tmp_path: Path, **env: str) -> tuple[dict[str, str], MuteDaemon]:
    (tmp_path / "dataflow.yml").write_text(FLOW)
    (tmp_path / "node.py").write_text("from dora_zmq import Node\nNode()\n")
    address = free_tcp_address()
    env = {"DORA_ZMQ_COORDINATOR": address, **env}
    dora("coordinator", "--bind", address, env=env).wait_for_line("coordinator listening")
    daemon = MuteDaemon(address)
    assert daemon.accepted.wait(20), "the coordinator did not accept the test's daemon"
    return env, daemon


def test_a_spawn_never_confirmed_fails_the_start(dora, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env, daemon = _setup(dora, tmp_path, DORA_ZMQ_SPAWN_TIMEOUT=f"{START_S:g}")
    try:
        run = dora("start", "dataflow.yml", "--attach", "--ship", "never", env=env, cwd=tmp_path)
        daemon.spawned.get(timeout=20)
        placed = time.monotonic()
        result = run.wait(START_S + SLACK_S + 10)
        took = time.monotonic() - placed
        assert took < START_S + SLACK_S, result.output
        assert result.returncode == 1, result.output
        assert f"not confirmed started by its daemon within {START_S:g} s" in result.stderr, result.output
        assert (
            "node 'muted' failed on machine 'mute'" in result.stderr and "no report from its daemon" in result.stderr
        ), result.output
    finally:
        daemon.close()


def test_a_stop_never_confirmed_ends_at_its_bound_and_a_late_exit_updates_it(dora, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env, daemon = _setup(dora, tmp_path, DORA_ZMQ_STOP_MARGIN=f"{MARGIN_S:g}")
    bound = 0.0 + ctl.KILL_AFTER_TERM_S + MARGIN_S  # --grace-duration 0
    try:
        run = dora("start", "dataflow.yml", "--attach", "--ship", "never", env=env, cwd=tmp_path)
        spawn = daemon.spawned.get(timeout=20)
        df_id = spawn.dataflow_id
        daemon.outbox.put(
            ctl.NodeResources("mute", [ctl.ProcessSample(df_id, "muted", 4242, 0.0, 1 << 20)])
        )  # it started
        asked = time.monotonic()
        assert dora("stop", df_id, "--grace-duration", "0", env=env).wait(20).returncode == 0
        assert daemon.stops.get(timeout=10).dataflow_id == df_id
        result = run.wait(bound + SLACK_S + 10)
        took = time.monotonic() - asked
        assert took < bound + SLACK_S, result.output
        assert result.returncode == 1, result.output
        assert "exit not confirmed within the stop's deadline" in result.stderr, result.output
        assert (
            "exit unconfirmed of node 'muted' on machine 'mute': no report from its daemon (connected" in result.stderr
        ), result.output
        # The exit is reported after all: the record says so, the dataflow stays ended.
        daemon.outbox.put(ctl.NodeExited(df_id, "muted", 0, None, False, machine="mute", sent={}))
        deadline = time.monotonic() + 20
        while True:
            [row] = json.loads(dora("list", "--format", "json", env=env).wait(20).stdout)["dataflows"]
            if row["nodes"]["muted"] != "unconfirmed" or time.monotonic() > deadline:
                break
            time.sleep(0.3)  # polling `list`: nothing to wait on
        assert row["status"] == "failed" and row["nodes"]["muted"] == "exited", row
        [failure] = row["failures"]
        assert failure["machine"] == "mute" and "after the deadline (exit code 0)" in failure["reason"], row
    finally:
        daemon.close()
