"""What ``dora-zmq status`` and ``dora-zmq top`` see: records built from the coordinator's state.

Pure functions over the coordinator's tables, called on its event-loop thread (the tables'
only owner); nothing here keeps state of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from .. import _control as ctl
from ._state import DaemonRecord, DataflowRun, NodeState

__all__ = ["daemon_infos", "node_stats"]

_ACTIVE = (NodeState.SPAWNING, NodeState.READY)


def daemon_infos(daemons: Iterable[DaemonRecord], runs: Iterable[DataflowRun]) -> list[ctl.DaemonInfo]:
    """One record per connected daemon, with the number of its nodes running now."""
    now = time.monotonic()
    running: dict[bytes, int] = {}
    for run in runs:
        if run.finished:
            continue
        for node, ident in run.placement.items():
            if run.nodes.get(node) in _ACTIVE:
                running[ident] = running.get(ident, 0) + 1
    return [
        ctl.DaemonInfo(
            d.machine_id,
            d.hostname,
            d.pid,
            d.version,
            d.advertise,
            list(d.node_addresses),
            round(now - d.last_seen, 3),
            round(now - d.connected_at, 3),
            running.get(d.identity, 0),
        )
        for d in sorted(daemons, key=lambda d: d.machine_id)
    ]


def node_stats(runs: Iterable[DataflowRun]) -> list[ctl.NodeStatsRecord]:
    """One record per node of the given dataflows: its last process sample and counters."""
    now = time.monotonic()
    records = []
    for run in runs:
        for node, status in run.nodes.items():
            stats = run.stats.get(node)
            sample = run.resources.get(node) if status in _ACTIVE else None
            reported = run.stats_at.get(node)
            records.append(
                ctl.NodeStatsRecord(
                    run.id,
                    run.name,
                    node,
                    run.machines.get(node, run.descriptor.machine_of(node)),
                    status,
                    sample.pid if sample else 0,
                    sample.cpu_percent if sample else 0.0,
                    sample.rss_bytes if sample else 0,
                    sample.restarts if sample else 0,
                    dict(stats.received or {}) if stats else {},
                    dict(stats.sent or {}) if stats else {},
                    dict(stats.queued or {}) if stats else {},
                    dict(stats.drops) if stats else {},
                    dict(stats.lost or {}) if stats else {},
                    round(now - reported, 3) if reported is not None else -1.0,
                )
            )
    return records
