"""The end of an upstream's streams when its in-band end-of-stream marker may be lost.

An upstream that ends sends an end-of-stream marker after its last message on each output;
its daemon also reports the exit, which reaches subscribers by the control plane
(``UpstreamExited``) with the number of messages the node sent per output. The marker can be
lost: a link down for longer than the data connection's heartbeat timeout drops what was
queued on it, and a burst past ZeroMQ's queues drops the newest messages, marker included.

So an input fed by an ended upstream closes on whichever comes first: the marker, or the
exit notice plus a short drain (until the sender's last sequence number has arrived, or
nothing more arrived from it for ``TAIL_WAIT_S``). What never arrived is counted as lost in
transit, so that per input ``received + dropped + lost == sent``.

Owner: the holder of the session's baton (one thread at a time, see ``_session``); no lock of its own.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .._control.contract import STREAM_END_DRAIN_S

if TYPE_CHECKING:
    from ._receiver import Route

__all__ = ["TAIL_WAIT_S", "EndingUpstreams"]

log = logging.getLogger(__name__)

#: How long an input waits, after the exit notice, for more of an ended upstream's messages
#: (counted from the last one that arrived) before it closes and counts the rest as lost
#: (the stream-end phase's deadline, stated in the contract).
TAIL_WAIT_S = STREAM_END_DRAIN_S


@dataclass(slots=True)
class _Ending:
    """An upstream whose exit notice came while inputs it feeds were still open."""

    node: str
    sent: dict[str, int]  # output -> messages it sent (its last sequence number)
    error: str | None  # NODE_FAILED text, or None for a clean end
    deadline: float


class EndingUpstreams:
    """Upstreams that exited, waiting for their tail or their marker (see module doc)."""

    def __init__(
        self,
        node_id: str,
        routes: "dict[bytes, Route]",
        open_inputs: Callable[[], frozenset[str]],
        close: Callable[[list[str], str | None, str], None],
    ) -> None:
        self._node_id = node_id
        self._routes = routes
        self._open_inputs = open_inputs
        self._close = close
        self._ending: dict[str, _Ending] = {}

    def __bool__(self) -> bool:
        return bool(self._ending)

    def exited(self, node: str, sent: dict[str, int], error: str | None) -> None:
        """``node`` exited having sent ``sent``: close its inputs once its tail is in."""
        self._ending[node] = _Ending(node, dict(sent), error, time.monotonic() + TAIL_WAIT_S)
        self.check()

    def progress(self, node: str) -> None:
        """A message of ``node`` arrived: it is still draining, wait on."""
        ending = self._ending.get(node)
        if ending is not None:
            ending.deadline = time.monotonic() + TAIL_WAIT_S

    def check(self) -> None:
        """Close the inputs of every ended upstream whose tail is complete or overdue."""
        if not self._ending:
            return
        now = time.monotonic()
        still_open = self._open_inputs()
        for node, ending in list(self._ending.items()):
            routes = [r for r in self._routes.values() if r.node == node and any(i in still_open for i in r.inputs)]
            if not routes:  # its markers came in-band: nothing left to do
                del self._ending[node]
                continue
            complete = all(r.next_seq - 1 >= ending.sent.get(r.output, 0) for r in routes)
            if not complete and now < ending.deadline:
                continue
            del self._ending[node]
            for route in routes:
                received_up_to = max(route.next_seq - 1, 0)
                tail = ending.sent.get(route.output, 0) - received_up_to
                if tail > 0:
                    route.lost += tail
                    log.warning(
                        "node %s: the last %d message(s) of %s/%s never arrived (lost in transit)",
                        self._node_id,
                        tail,
                        node,
                        route.output,
                    )
            self._close([i for r in routes for i in r.inputs], ending.error, node)
