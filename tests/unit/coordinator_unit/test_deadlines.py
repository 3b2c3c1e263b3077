"""The coordinator's deadlines (``coordinator._deadlines``): who is unconfirmed, and why."""

from __future__ import annotations

from pathlib import Path

from dora_zmq import _control as ctl
from dora_zmq.coordinator._deadlines import (
    UNREACHABLE_AFTER_S,
    late_exit_text,
    spawn_unconfirmed,
    stop_unconfirmed,
    unconfirmed_reason,
)
from dora_zmq.coordinator._state import DaemonRecord, DataflowRun, NodeState
from dora_zmq.descriptor import parse_dataflow

YAML = """
nodes:
  - id: a
    path: a.py
  - id: b
    path: b.py
  - id: edge
    path: dynamic
"""


def _run() -> DataflowRun:
    descriptor = parse_dataflow(YAML, working_dir=Path("."), check_paths=False)
    run = DataflowRun("df", "df", descriptor, YAML, ".", False)
    run.nodes = {"a": NodeState.SPAWNING, "b": NodeState.SPAWNING, "edge": NodeState.WAITING}
    return run


def test_stop_bound_is_grace_plus_ladder_plus_margin() -> None:
    assert ctl.stop_bound(10.0) == 10.0 + ctl.KILL_AFTER_TERM_S + ctl.STOP_MARGIN_S
    assert ctl.stop_bound(-1.0) == ctl.stop_bound(0.0)


def test_reason_says_unreachable_or_no_report() -> None:
    record = DaemonRecord(b"d", "h2", "host", 1, last_seen=100.0)
    assert unconfirmed_reason(None, 100.0) == "daemon unreachable (disconnected)"
    assert unconfirmed_reason(record, 100.5).startswith("no report from its daemon (connected")
    assert unconfirmed_reason(record, 100.0 + UNREACHABLE_AFTER_S + 1).startswith("daemon unreachable (no heartbeat")
    assert unconfirmed_reason(record, 100.5, connected=False).startswith("daemon unreachable (its connection is closed")


def test_spawns_are_judged_only_after_their_bound_and_a_sample_confirms() -> None:
    run = _run()
    assert spawn_unconfirmed(run, now_wall=1e9) == []  # not placed yet
    run.placed_at = 1000.0
    assert spawn_unconfirmed(run, now_wall=1000.0 + ctl.START_CONFIRM_S - 1) == []
    run.resources["a"] = ctl.ProcessSample("df", "a", 42, 0.0, 1)
    assert spawn_unconfirmed(run, now_wall=1000.0 + ctl.START_CONFIRM_S + 1) == ["b"]  # dynamic nodes are not spawned
    run.folder_fetched_at = 1000.0 + ctl.START_CONFIRM_S  # a shipped folder still arriving: counts from its last chunk
    assert spawn_unconfirmed(run, now_wall=1000.0 + ctl.START_CONFIRM_S + 1) == []


def test_stop_waits_on_every_spawned_node_not_ended() -> None:
    run = _run()
    run.nodes.update(a=NodeState.EXITED, b=NodeState.READY)
    assert stop_unconfirmed(run) == ["b"]


def test_late_exit_says_how_it_ended() -> None:
    assert (
        late_exit_text(ctl.NodeExited("df", "b", None, 15, True), 1.25)
        == "; its exit was reported 1.2 s after the deadline (killed by signal 15)"
    )
    assert late_exit_text(ctl.NodeExited("df", "b", 0, None, False), 3.0).endswith("(exit code 0)")
