"""A daemon's exit reports, sent again until the coordinator acknowledges them.

A node's exit (``NodeExited``) is what ends its subscribers' inputs when the in-band
end-of-stream marker is lost, so it must not be lost itself: a link down for longer than the
control connection's heartbeat timeout drops what was queued on that connection. The
coordinator acknowledges each report (``ExitReported``); a report still unacknowledged after
``RESEND_AFTER_S`` goes again with the next heartbeat, for up to ``GIVE_UP_S``. The
coordinator ignores a copy of an exit it has.

Each report carries the node's messages sent per output, taken from the last counters it
reported through this daemon (``NodeStats.sent``; its closing report is sent before it exits).

Owned by the daemon's event-loop thread; no lock.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import replace

from .. import _control as ctl

__all__ = ["ExitReports"]

RESEND_AFTER_S = 2.0
GIVE_UP_S = 120.0
_KEPT = 1000  # unacknowledged reports kept at most (a coordinator gone for good)


class ExitReports:
    """Unacknowledged exit reports, and the latest ``sent`` counts of each live node."""

    def __init__(self) -> None:
        self._sent: dict[tuple[str, str], dict[str, int]] = {}
        # (dataflow, node) -> (report, first sent at, last sent at)
        self._unacked: OrderedDict[tuple[str, str], tuple[ctl.NodeExited, float, float]] = OrderedDict()

    def note_stats(self, msg: ctl.NodeStats) -> None:
        """Remember what a node says it sent (its last report before the exit is its final one)."""
        if msg.sent is not None:
            self._sent[(msg.dataflow_id, msg.node)] = dict(msg.sent)

    def report(self, msg: ctl.NodeExited) -> ctl.NodeExited:
        """``msg`` with the node's sent counts; kept until acknowledged."""
        key = (msg.dataflow_id, msg.node)
        sent = self._sent.pop(key, None)
        if sent is not None and msg.sent is None:
            msg = replace(msg, sent=sent)
        now = time.monotonic()
        self._unacked[key] = (msg, now, now)
        self._unacked.move_to_end(key)
        while len(self._unacked) > _KEPT:
            self._unacked.popitem(last=False)
        return msg

    def acknowledged(self, dataflow_id: str, node: str) -> None:
        """The coordinator has the exit of ``node``."""
        self._unacked.pop((dataflow_id, node), None)

    def due(self) -> list[ctl.NodeExited]:
        """Reports to send again now (unacknowledged for a while); drops the hopeless ones."""
        now = time.monotonic()
        out: list[ctl.NodeExited] = []
        for key, (msg, first, last) in list(self._unacked.items()):
            if now - first > GIVE_UP_S:
                del self._unacked[key]
            elif now - last >= RESEND_AFTER_S:
                self._unacked[key] = (msg, first, now)
                out.append(msg)
        return out
