"""A daemon's ``NodeReady`` reports, sent again until the coordinator's ``Peers`` list them.

A node's readiness (its publisher's endpoint) is what lets its subscribers start: a report
lost with a control connection that dropped (a link down for longer than its heartbeat
timeout while the node was starting) left the node ``spawning`` for ever and its subscribers
waiting in ``Node()`` (issue 13, found by tests/multihost/test_fault_phases.py). The
coordinator answers every ``NodeReady`` with a ``Peers`` table to the dataflow's daemons, so a
table holding the node's endpoint is the acknowledgement; until then the report goes again
with the heartbeat every ``RESEND_AFTER_S``. The coordinator's handling of a copy is idempotent
(the same endpoint, the table published again).

Owned by the daemon's event-loop thread; no lock.
"""

from __future__ import annotations

import time

from .. import _control as ctl

__all__ = ["ReadyReports"]

RESEND_AFTER_S = 2.0
GIVE_UP_S = 120.0


class ReadyReports:
    """Unconfirmed ``NodeReady`` reports, keyed by (dataflow, node)."""

    def __init__(self) -> None:
        # (dataflow, node) -> (report, first sent at, last sent at)
        self._unconfirmed: dict[tuple[str, str], tuple[ctl.NodeReady, float, float]] = {}

    def report(self, msg: ctl.NodeReady) -> ctl.NodeReady:
        """``msg``, kept until a ``Peers`` table lists its endpoint."""
        now = time.monotonic()
        self._unconfirmed[(msg.dataflow_id, msg.node)] = (msg, now, now)
        return msg

    def confirmed_by(self, peers: ctl.Peers) -> None:
        """The coordinator published this table: the reports whose endpoint it holds arrived."""
        for node, endpoint in peers.endpoints.items():
            key = (peers.dataflow_id, node)
            held = self._unconfirmed.get(key)
            if held is not None and held[0].endpoint == endpoint:
                del self._unconfirmed[key]

    def forget(self, dataflow_id: str, node: str) -> None:
        """The node exited: its exit report supersedes its readiness."""
        self._unconfirmed.pop((dataflow_id, node), None)

    def forget_dataflow(self, dataflow_id: str) -> None:
        """The dataflow ended here."""
        for key in [k for k in self._unconfirmed if k[0] == dataflow_id]:
            del self._unconfirmed[key]

    def due(self) -> list[ctl.NodeReady]:
        """Reports to send again now; drops the hopeless ones (a coordinator gone for good)."""
        now = time.monotonic()
        out: list[ctl.NodeReady] = []
        for key, (msg, first, last) in list(self._unconfirmed.items()):
            if now - first > GIVE_UP_S:
                del self._unconfirmed[key]
            elif now - last >= RESEND_AFTER_S:
                self._unconfirmed[key] = (msg, first, now)
                out.append(msg)
        return out
