"""The deadlines the coordinator holds a dataflow's phases to (README: "Deadlines").

Every phase ends by itself, whatever the network does; what has not happened by its bound is
reported, naming the node, its machine and why, instead of being waited for:

* start-up: a node whose daemon has not confirmed its process (a resource sample, its
  registration, its exit) within ``START_CONFIRM_S`` of being sent there fails the dataflow;
* stop: a ``stopping`` dataflow ends ``contract.stop_bound(grace)`` after the stop; nodes whose
  exit is not confirmed by then are *unconfirmed*. A later report of the real exit updates
  the record; the dataflow stays ended.

Why a node is not confirmed: its daemon is *unreachable* (disconnected, or no heartbeat for
``UNREACHABLE_AFTER_S``: a cut link, a powered-off machine) or it is connected and sent *no
report*. A daemon heard from again after such a silence is told again to stop the dataflows
being stopped (a ``StopNodes`` queued on a connection that dropped is lost with it).

Pure functions over the coordinator's records; called on its event-loop thread only.
"""

from __future__ import annotations

import time

from .. import _control as ctl
from ._state import DaemonRecord, DataflowRun, NodeState

__all__ = ["UNREACHABLE_AFTER_S", "late_exit_text", "spawn_unconfirmed", "stop_unconfirmed", "unconfirmed_reason"]

#: A daemon silent for this long (4 missed heartbeats) is called unreachable in a report.
UNREACHABLE_AFTER_S = 4 * ctl.HEARTBEAT_INTERVAL_S


def unconfirmed_reason(record: DaemonRecord | None, now: float, connected: bool | None = None) -> str:
    """Why a node's daemon did not confirm what it was asked, for a report.

    Args:
        record: the node's daemon (None: disconnected, lost).
        now: ``time.monotonic()``.
        connected: whether a probe of its control connection went through (None: not probed).
    """
    if record is None:
        return "daemon unreachable (disconnected)"
    silent = now - record.last_seen
    if connected is False:
        return f"daemon unreachable (its connection is closed; no heartbeat for {silent:.1f} s)"
    if silent > UNREACHABLE_AFTER_S:
        return f"daemon unreachable (no heartbeat for {silent:.1f} s)"
    return f"no report from its daemon (connected, heard from {silent:.1f} s ago)"


def spawn_unconfirmed(run: DataflowRun, now_wall: float | None = None) -> list[str]:
    """Nodes of a placed ``run`` still unconfirmed ``START_CONFIRM_S`` after they were sent
    to their daemon (or after its last chunk of a shipped folder arrived); [] before that."""
    now_wall = time.time() if now_wall is None else now_wall
    if not run.placed_at or now_wall - max(run.placed_at, run.folder_fetched_at) < ctl.START_CONFIRM_S:
        return []
    return [n for n in run.static_nodes() if run.nodes.get(n) == NodeState.SPAWNING and n not in run.resources]


def stop_unconfirmed(run: DataflowRun) -> list[str]:
    """Spawned nodes of ``run`` whose exit has not been reported."""
    return [n for n in run.static_nodes() if run.nodes.get(n) not in (NodeState.EXITED, NodeState.FAILED)]


def late_exit_text(msg: ctl.NodeExited, after_s: float) -> str:
    """What is added to an unconfirmed node's record when its exit is reported after all."""
    if msg.signal is not None:
        how = f"killed by signal {msg.signal}"
    elif msg.exit_code is not None:
        how = f"exit code {msg.exit_code}"
    else:
        how = msg.reason or "ended"
    return f"; its exit was reported {after_s:.1f} s after the deadline ({how})"
