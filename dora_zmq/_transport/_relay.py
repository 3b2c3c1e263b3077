"""The relay: an XSUB/XPUB forwarder for nodes that cannot accept inbound connections.

A node behind NAT or a firewall (an edge device) connects its publisher *out* to the relay's
publisher side instead of listening; subscribers connect to the relay's subscriber side.
Subscriptions (and the start-barrier markers) travel the other way, so a relayed node starts
exactly like a directly reachable one. The cost is one more hop (see the README's figure).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import zmq

from .._errors import ControlError
from ..security import Plane, secure_server
from ._channel import context
from ._options import HWM

__all__ = ["Relay"]

log = logging.getLogger(__name__)

# Messages moved from one socket before the other direction gets its turn (a flood of data
# must not hold subscriptions back, nor the reverse).
_PUMP_BATCH = 1000


class Relay:
    """Binds ``publishers`` (XSUB: relayed nodes connect here) and ``subscribers`` (XPUB)."""

    def __init__(self, publishers: str, subscribers: str) -> None:
        ctx = context()
        self._front = ctx.socket(zmq.XSUB)
        self._back = ctx.socket(zmq.XPUB)
        # Every subscription must reach the publishers, duplicates included: each subscriber's
        # barrier marker is one, and a node counts them.
        self._back.setsockopt(zmq.XPUB_VERBOSER, 1)
        for sock in (self._front, self._back):
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, HWM)
            sock.setsockopt(zmq.RCVHWM, HWM)
            secure_server(sock, Plane.DATA)
        try:
            self._front.bind(publishers)
            self._back.bind(subscribers)
        except zmq.ZMQError as exc:
            self.close()
            raise ControlError(f"relay cannot listen on {publishers} / {subscribers}: {exc}") from exc
        self.publishers = self._front.getsockopt_string(zmq.LAST_ENDPOINT)
        self.subscribers = self._back.getsockopt_string(zmq.LAST_ENDPOINT)
        self.forwarded = 0
        self._stop = threading.Event()

    def request_stop(self) -> None:
        """Thread-safe: leave ``serve_forever`` within 200 ms."""
        self._stop.set()

    def serve_forever(self) -> None:
        """Forward data down and subscriptions up until stopped; closes the sockets."""
        poller = zmq.Poller()
        poller.register(self._front, zmq.POLLIN)
        poller.register(self._back, zmq.POLLIN)
        log.info("relay: publishers connect to %s, subscribers to %s", self.publishers, self.subscribers)
        try:
            while not self._stop.is_set():
                for sock, _ in poller.poll(200):
                    other = self._back if sock is self._front else self._front
                    self._pump(sock, other)
        finally:
            self.close()

    def _pump(self, source: Any, target: Any) -> None:
        for _ in range(_PUMP_BATCH):
            try:
                frames = source.recv_multipart(zmq.DONTWAIT, copy=False)
            except zmq.Again:
                return
            try:
                target.send_multipart(frames, zmq.DONTWAIT, copy=False)
                self.forwarded += 1
            except zmq.Again:
                log.debug("relay: a peer is full; message dropped (the receiver counts the gap)")

    def close(self) -> None:
        """Close both sockets (idempotent)."""
        for sock in (self._front, self._back):
            if not sock.closed:
                sock.close(0)
