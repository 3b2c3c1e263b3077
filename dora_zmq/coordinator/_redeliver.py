"""Exit notices sent again to a daemon that missed them.

A node's end reaches its subscribers two ways: in-band (the end-of-stream marker after its
last message) and by the control plane (``UpstreamExited``, from the coordinator through each
daemon). A link that drops for longer than the control sockets' heartbeat timeout loses what
was queued on the connection, both ways. Each daemon heartbeat lists the exits it has (see
``DaemonHeartbeat.exits``); the coordinator sends the missing ones again, so the end of a
stream does not depend on one message surviving. Daemons ignore copies they already have.

Runs on the coordinator's thread only (it owns the runs).
"""

from __future__ import annotations

import time
from typing import Iterable

from .. import _control as ctl
from ._state import DataflowRun, NodeState

#: A ``SpawnNodes`` not yet listed in its daemon's heartbeats goes again after this long.
SPAWN_RESEND_AFTER_S = 2.0

__all__ = ["SpawnResends", "exit_notice", "missing_exits", "orphaned_dataflows"]


def exit_notice(run: DataflowRun, msg: ctl.NodeExited) -> ctl.UpstreamExited:
    """The notice for ``msg``, with what the node sent per output.

    The daemon puts the node's last counters in its exit report (``NodeExited.sent``; a node
    that closed sent its final ones first); a node killed without closing has the counts of
    its last report (at most a second old). Older daemons: the counters seen here.
    """
    sent = msg.sent
    if sent is None and (stats := run.stats.get(msg.node)) is not None and stats.sent is not None:
        sent = dict(stats.sent)
    return ctl.UpstreamExited(run.id, msg.node, msg.failed, msg.reason if msg.failed else "", sent)


def missing_exits(runs: Iterable[DataflowRun], daemon: bytes, known: dict[str, list[str]]) -> list[ctl.UpstreamExited]:
    """Exit notices of the dataflows ``daemon`` still runs (``known``'s keys) it has not got."""
    out: list[ctl.UpstreamExited] = []
    for run in runs:
        have = known.get(run.id)
        if have is None or run.finished or daemon not in run.daemons:
            continue
        out.extend(notice for node, notice in run.exit_notices.items() if node not in have)
    return out


def orphaned_dataflows(
    runs: dict[str, DataflowRun], known: dict[str, list[str]], ended_s: float
) -> list[tuple[str, str]]:
    """The dataflows a daemon still runs (``known``'s keys) that are over here: ``(id, why)``.

    A coordinator keeps no state across a restart: a daemon that registers again with the new
    one goes on running the old one's nodes, which nobody could stop or follow any more. A
    daemon declared lost during a cut comes back with the nodes of a dataflow that failed
    without them. Either way they are stopped (issue 13, tests/multihost/test_fault_phases.py,
    benchmarks/soak_cuts.py); a dataflow that ended less than ``ended_s`` ago is left to end.
    """
    out = []
    now = time.time()
    for df_id in known:
        run = runs.get(df_id)
        if run is None:
            out.append((df_id, "which this coordinator does not know (it restarted, and a coordinator keeps no state)"))
        elif run.finished and run.ended_at is not None and now - run.ended_at > ended_s:
            out.append((df_id, f"which ended {now - run.ended_at:.0f} s ago ({run.status})"))
    return out


class SpawnResends:
    """``SpawnNodes`` sent again until the daemon's heartbeat lists the dataflow.

    A spawn queued on a control connection that drops (a link cut while a dataflow starts) is
    lost with it, and its nodes stayed ``spawning`` for ever (issue 13, found by
    tests/multihost/test_fault_phases.py). A daemon lists the dataflows it has in every
    heartbeat (``DaemonHeartbeat.exits``' keys); one missing from a beat ``SPAWN_RESEND_AFTER_S``
    after the spawn, while none of its nodes there has been heard of, is sent again. Daemons
    ignore a spawn of a dataflow they have. Coordinator thread only.
    """

    def __init__(self) -> None:
        self._sent: dict[tuple[str, bytes], tuple[ctl.SpawnNodes, float]] = {}  # (dataflow, daemon) -> (spawn, sent at)

    def sent(self, daemon: bytes, msg: ctl.SpawnNodes) -> None:
        self._sent[(msg.dataflow_id, daemon)] = (msg, time.monotonic())

    def due(self, runs: dict[str, DataflowRun], daemon: bytes, known: dict[str, list[str]]) -> list[ctl.SpawnNodes]:
        """The spawns ``daemon`` (whose beat lists ``known``) should get again now; forgets confirmed ones."""
        now = time.monotonic()
        out = []
        for key, (msg, at) in list(self._sent.items()):
            df_id, ident = key
            run = runs.get(df_id)
            if run is None or run.finished:
                del self._sent[key]
            elif ident != daemon:
                continue
            elif df_id in known or any(run.nodes.get(node) != NodeState.SPAWNING for node in msg.nodes):
                del self._sent[key]  # the daemon has it
            elif now - at >= SPAWN_RESEND_AFTER_S:
                self._sent[key] = (msg, now)
                out.append(msg)
        return out
