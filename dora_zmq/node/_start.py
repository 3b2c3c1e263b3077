"""The start barrier: a node starts once its upstreams are bound and its subscribers attached.

1. announce the node's endpoint to its daemon (``NodeBound``);
2. wait for the peer list until every upstream (dynamic ones aside) has bound or ended;
3. connect to them and subscribe (the session's ``Receiver.attach``/``subscribe``);
4. wait until every subscriber's start marker came and its endpoint is known (so the first
   large message knows whether shared memory reaches it), at most ``START_TIMEOUT_S``.

Control messages other than the peer list and STOP that arrive meanwhile are kept, in order,
for the session to apply once it starts (``Started.deferred``).

Runs on the application thread before the receiver thread exists: it owns the control
channel and the publisher's subscription stream for that time.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .. import _control as ctl
from .._transport import Channel, Poller, Publisher
from .._wire import parse_marker
from ._events import EventQueue
from ._readers import ReaderTokens

if TYPE_CHECKING:
    from ..descriptor import Dataflow

__all__ = ["START_TIMEOUT_S", "Started", "StartBarrier"]

log = logging.getLogger(__name__)

START_TIMEOUT_S = float(os.environ.get("DORA_ZMQ_START_TIMEOUT", "60"))
_PEERS_POLL_MS = 1000
_SUBSCRIBERS_POLL_MS = 200


@dataclass(slots=True)
class Started:
    """What the barrier leaves for the session."""

    deferred: list[Any] = field(default_factory=list)  # control messages to apply, in order


class StartBarrier:
    """One node's start barrier (see the module docstring)."""

    def __init__(
        self,
        node_id: str,
        descriptor: Dataflow,
        ctrl: Channel,
        pub: Publisher,
        readers: ReaderTokens,
        queue: EventQueue,
    ) -> None:
        self._id = node_id
        self._descriptor = descriptor
        self._ctrl = ctrl
        self._pub = pub
        self._readers = readers
        self._queue = queue

    def run(
        self,
        bound: ctl.NodeBound,
        stopping: bool,
        attach: Callable[[ctl.Peers, list[Any]], None],
        post_peers: Callable[[ctl.Peers], None],
    ) -> Started:
        """Announce ``bound``, wait for the upstreams, ``attach`` to them, wait for subscribers.

        ``attach(peers, deferred)`` connects and subscribes; ``post_peers`` tells the sending
        side of peer lists that come while subscribers attach.
        """
        started = Started()
        self._ctrl.send(bound)
        if stopping:
            self._queue.stop()
            return started
        markers: set[str] = set()
        exited: set[str] = set()
        peers = self._await_peers(markers, exited, started.deferred)
        if peers is None:
            return started
        attach(peers, started.deferred)
        self._await_subscribers(markers, exited | set(peers.exited), set(peers.endpoints), started.deferred, post_peers)
        return started

    def _static(self, nodes: set[str] | list[str]) -> set[str]:
        from ..descriptor import NodeKind  # the parser's module: Node() has imported it already

        return {n for n in nodes if self._descriptor.node(n).kind is not NodeKind.DYNAMIC}

    def _await_peers(self, markers: set[str], exited: set[str], deferred: list[Any]) -> ctl.Peers | None:
        """Wait until every upstream node (dynamic ones aside) has bound its publisher or ended."""
        upstream = self._static(self._descriptor.upstream_nodes(self._id))
        poller = Poller([self._ctrl, self._pub])
        latest: ctl.Peers | None = None
        while True:
            for member in poller.wait(_PEERS_POLL_MS):
                if member is self._pub:
                    self._collect_markers(markers)
                    continue
                got = self._ctrl.recv_nowait()
                msg = got[1] if got else None
                if isinstance(msg, ctl.Peers):
                    latest = msg
                elif isinstance(msg, ctl.StopNode):
                    self._queue.stop(msg.reason)
                    return None
                elif msg is not None:
                    if isinstance(msg, ctl.UpstreamExited):
                        exited.add(msg.node)
                    deferred.append(msg)
                if latest is not None and upstream <= set(latest.endpoints) | set(latest.exited) | exited:
                    return latest

    def _await_subscribers(
        self,
        markers: set[str],
        exited: set[str],
        known: set[str],
        deferred: list[Any],
        post_peers: Callable[[ctl.Peers], None],
    ) -> None:
        """Wait until every subscriber is attached (its marker came) and its endpoint is known.

        The endpoint says which machine it runs on: without it the first large message would
        not know that shared memory can reach that subscriber.
        """
        expected = self._static(self._descriptor.downstream_nodes(self._id))
        poller = Poller([self._ctrl, self._pub])
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (expected <= markers | exited and expected <= known | exited):
            if time.monotonic() > deadline:
                missing = sorted(expected - (markers & known) - exited)
                log.warning(
                    "node %s: subscribers %s not attached after %.0f s; starting anyway",
                    self._id,
                    missing,
                    START_TIMEOUT_S,
                )
                return
            for member in poller.wait(_SUBSCRIBERS_POLL_MS):
                if member is self._pub:
                    self._collect_markers(markers)
                elif (got := self._ctrl.recv_nowait()) is not None:
                    msg = got[1]
                    if isinstance(msg, ctl.UpstreamExited):
                        exited.add(msg.node)
                        deferred.append(msg)
                    elif isinstance(msg, ctl.StopNode):
                        self._queue.stop(msg.reason)
                        return
                    else:
                        if isinstance(msg, ctl.Peers):
                            known |= set(msg.endpoints)
                            exited |= set(msg.exited)
                            post_peers(msg)
                        deferred.append(msg)

    def _collect_markers(self, markers: set[str]) -> None:
        for sub in self._pub.read_subscriptions():
            parsed = parse_marker(sub)
            if parsed is None or not parsed[0]:
                continue
            reader = self._readers.reader_of(parsed[1], "a start marker")
            if reader is not None:
                markers.add(reader)
