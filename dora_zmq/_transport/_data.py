"""Data-plane sockets: a node's XPUB publisher and SUB subscriber."""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Sequence, cast

import zmq

from .._errors import ControlError
from ..security import Peer, Plane, peer_of, secure_client, secure_server, security_enabled
from ._options import HWM as _HWM
from ._in_flight import TRACKED_BYTES, InFlight
from ._options import keep_alive, worth_logging

__all__ = ["Publisher", "Subscriber", "ipc_endpoint", "queue_bytes"]

log = logging.getLogger(__name__)

# What one publisher may have handed to ZeroMQ without a copy and not yet sent (or dropped):
# _IN_FLIGHT_FACTOR x ``queue_bytes()`` (1 GiB by default), whatever the number of subscribers.
# ZeroMQ's own mark (HWM messages per connection) stays fixed: see ``_in_flight`` for why it
# cannot follow the message size.
_IN_FLIGHT_FACTOR = 4
_DEFAULT_QUEUE_BYTES = 256 * 1024 * 1024


def queue_bytes() -> int:
    """``DORA_ZMQ_QUEUE_BYTES``: the most bytes queued per node input; a publisher holds 4x that in flight."""
    try:
        return max(1, int(os.environ.get("DORA_ZMQ_QUEUE_BYTES", _DEFAULT_QUEUE_BYTES)))
    except ValueError:
        return _DEFAULT_QUEUE_BYTES


# How long a closing node keeps sending what is queued to subscribers that are still there.
_PUB_LINGER_MS = 5000
#: ... and when the whole dataflow is being stopped: its subscribers are stopping too and take
#: no more input, so a queue is not waited for (libzmq 4.3.5 may also hold a connection whose
#: subscriber left as the socket closed for the whole linger: README, "Deadlines").
STOP_LINGER_MS = 100
# Plain ints: passing the enum members costs a conversion on every call.
_SNDMORE = int(zmq.SNDMORE)
_DONTWAIT = int(zmq.DONTWAIT)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
# What publishers bind (``Publisher``) or relays listen on: no other ZeroMQ transport is ours.
_DATA_TRANSPORTS = ("ipc://", "tcp://")


# A Unix socket path holds at most 107 bytes (108 with its NUL); a few are kept in reserve.
_IPC_PATH_MAX = 100
# Bytes of the name's digest that stand for it in a path that would be too long (10 hex digits).
_IPC_DIGEST_BYTES = 5


def ipc_endpoint(directory: str, name: str) -> str:
    """An ``ipc://`` address in ``directory`` (kept under the 107-byte socket path limit).

    A name that would make the path too long is replaced by a digest of it: the same in every
    process (unlike ``hash()``, which Python salts per process).
    """
    path = os.path.join(directory, name + ".sock")
    if len(path) > _IPC_PATH_MAX:
        import hashlib  # rarely needed: not loaded by every node

        digest = hashlib.blake2b(name.encode(), digest_size=_IPC_DIGEST_BYTES).hexdigest()
        path = os.path.join(directory, f"{digest}.sock")
    return "ipc://" + path


class Publisher:
    """A node's output socket (XPUB) bound on ipc and optionally tcp.

    ``XPUB_VERBOSER`` makes every subscription from every subscriber visible, which the start
    barrier uses; subscriptions are read with :meth:`read_subscriptions`.

    With CURVE and ``admit`` given, a subscription takes effect only once read and admitted:
    ``admit(peer, topic)`` sees the key of the connection it came on (``XPUB_MANUAL``), so a
    node key can subscribe to what its node reads and nothing else. The owner then reads
    subscriptions regularly (``manual`` says so); unsubscriptions are applied as they come.
    """

    def __init__(
        self, ipc: str, tcp_bind: str = "", relay: str = "", admit: Callable[[Peer, bytes], bool] | None = None
    ) -> None:
        sock = context_socket(zmq.XPUB)
        sock.setsockopt(zmq.XPUB_VERBOSER, 1)
        sock.setsockopt(zmq.SNDHWM, _HWM)
        sock.setsockopt(zmq.LINGER, _PUB_LINGER_MS)
        # Heartbeats on the data connections too: a subscriber host that vanished is dropped
        # within seconds (its queue freed, its shared-memory share released), not at TCP timeout.
        keep_alive(sock)  # see _options
        self._sock = sock
        self.in_flight = InFlight(_IN_FLIGHT_FACTOR * queue_bytes())  # owner: the publisher's owner
        # Through a relay every subscription comes on the relay's one connection: nothing to tell apart.
        self._admit = admit if admit is not None and not relay and security_enabled() else None
        self.manual = self._admit is not None
        if self.manual:
            sock.setsockopt(zmq.XPUB_MANUAL, 1)
        self.refused = 0  # subscriptions not admitted
        if relay:
            # Outbound only: the relay listens, so with CURVE this side is the client.
            secure_client(sock, Plane.DATA)
            self.ipc = self.tcp = ""
            self.connect_relay(relay)
            return
        secure_server(sock, Plane.DATA)
        try:
            self.ipc = ""
            if ipc:
                sock.bind(ipc)
                self.ipc = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            self.tcp = ""
            if tcp_bind:
                sock.bind(tcp_bind)
                self.tcp = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        except zmq.ZMQError as exc:
            sock.close(0)
            raise ControlError(f"cannot bind node publisher on {ipc} {tcp_bind}: {exc}") from exc

    @property
    def socket(self) -> zmq.Socket[Any]:
        """The underlying socket, for polling."""
        return self._sock

    def connect_relay(self, address: str) -> None:
        """Publish through a relay (outbound connection only; for nodes behind NAT)."""
        try:
            self._sock.connect(address)
        except zmq.ZMQError as exc:
            raise ControlError(f"invalid relay address {address!r}: {exc}") from exc

    def send(self, frames: Sequence[Any]) -> bool:
        """Send one multipart message; the last frame (the body) goes without a copy.

        One ``send`` per frame rather than ``send_multipart``: the latter costs three times
        as much for a small message (it re-checks every frame and converts enum flags).
        Frames below pyzmq's ``copy_threshold`` are copied anyway, which is cheaper for them.

        Returns False, sending nothing, when a large body would pass the in-flight budget
        (slow subscribers hold what was sent before): its sequence number is spent, so the
        subscribers count it as lost in transit; the publisher counts it in
        ``in_flight.refused`` and logs it.
        """
        send = self._sock.send
        last = len(frames) - 1
        body = frames[last]
        if len(body) >= TRACKED_BYTES:
            in_flight = self.in_flight
            view = memoryview(body)  # a fresh object: pyzmq holds it exactly as long as ZeroMQ does
            nbytes = view.nbytes
            if in_flight.full(nbytes):
                in_flight.refused += 1
                if worth_logging(in_flight.refused):
                    log.warning(
                        "a %d-byte message was not sent (%d so far): %d bytes sent before still wait for "
                        "slow subscribers (the bound is 4 x DORA_ZMQ_QUEUE_BYTES = %d)",
                        nbytes,
                        in_flight.refused,
                        in_flight.bytes,
                        in_flight.budget,
                    )
                return False
            body = in_flight.track(view, nbytes)
        for i in range(last):
            send(frames[i], _SNDMORE)
        send(body, 0, copy=False)
        return True

    def read_subscriptions(self) -> list[bytes]:
        """Subscription messages (``\\x01topic`` / ``\\x00topic``) waiting on the socket."""
        # cast: EVENTS is an int option; pyzmq's stub types get() for every option (int | bytes)
        if not cast(int, self._sock.get(_EVENTS)) & _POLLIN:
            return []  # the usual case, without raising (and catching) zmq.Again
        out = []
        while True:
            try:
                if self._admit is None:
                    out.append(self._sock.recv(zmq.DONTWAIT))
                elif (message := self._apply(self._sock.recv(zmq.DONTWAIT, copy=False))) is not None:
                    out.append(message)
            except zmq.Again:
                return out

    def _apply(self, frame: zmq.Frame) -> bytes | None:
        """Manual mode: apply an (un)subscription if admitted; the message, or None if refused."""
        message = frame.bytes
        kind, topic = message[:1], message[1:]
        if kind == b"\x01":
            try:
                peer = peer_of(str(frame.get("User-Id")))  # a str property (the stub also allows int)
            except zmq.ZMQError:  # no key on that connection (cannot happen with CURVE on)
                peer = peer_of("unknown:")
            assert self._admit is not None
            if not self._admit(peer, topic):
                self.refused += 1
                if worth_logging(self.refused):
                    log.warning(
                        "publisher refused a subscription to %r from %s (%d so far)",
                        topic,
                        peer.describe(),
                        self.refused,
                    )
                return None
            self._sock.setsockopt(zmq.SUBSCRIBE, topic)
        elif kind == b"\x00":
            self._sock.setsockopt(zmq.UNSUBSCRIBE, topic)  # a no-op for a closed connection's
        return message

    def close(self, linger_ms: int = _PUB_LINGER_MS) -> None:
        """Close, waiting up to ``linger_ms`` for queued messages to leave."""
        if not self._sock.closed:
            self._sock.close(linger_ms)


class Subscriber:
    """A node's input socket (SUB): connects to upstream publishers, filters by topic."""

    def __init__(self) -> None:
        # XSUB rather than SUB: the same connection carries shared-memory release messages
        # back to each publisher (an XPUB hands non-subscription messages to its owner).
        sock = context_socket(zmq.XSUB)
        sock.setsockopt(zmq.RCVHWM, _HWM)
        sock.setsockopt(zmq.LINGER, 0)
        keep_alive(sock)  # see _options
        secure_client(sock, Plane.DATA)
        self._sock = sock
        self.connected: set[str] = set()

    @property
    def socket(self) -> zmq.Socket[Any]:
        """The underlying socket, for polling."""
        return self._sock

    def connect(self, address: str) -> None:
        """Connect to a publisher once (repeated calls are no-ops).

        Raises:
            ControlError: ``address`` is not an ``ipc://`` or ``tcp://`` endpoint ZeroMQ can
                connect to. Endpoints come from the peer list, which a forged or broken
                message can fill: the caller logs and skips the one address.
        """
        if address and address not in self.connected:
            if not address.startswith(_DATA_TRANSPORTS):
                raise ControlError(f"not a data endpoint (ipc:// or tcp://): {address[:200]!r}")
            try:
                self._sock.connect(address)
            except zmq.ZMQError as exc:
                raise ControlError(f"cannot connect to {address[:200]!r}: {exc}") from exc
            self.connected.add(address)

    def subscribe(self, topic: bytes) -> None:
        """Receive messages whose topic frame starts with ``topic``."""
        self._sock.send(b"\x01" + topic)

    def send_upstream(self, message: bytes) -> None:
        """Send ``message`` to every connected publisher (dropped if one cannot take it now)."""
        try:
            self._sock.send(message, zmq.DONTWAIT)
        except zmq.Again:
            log.debug("upstream message dropped: no publisher can take it now")

    def pending(self) -> bool:
        """Whether a message waits to be read now.

        About a third of the cost of a ``recv_nowait`` that finds nothing (pyzmq raises and
        the caller catches ``zmq.Again``: ~3 us on this kind of machine, against ~1 us here).
        """
        # cast: EVENTS is an int option; pyzmq's stub types get() for every option (int | bytes)
        return bool(cast(int, self._sock.get(_EVENTS)) & _POLLIN)

    def recv_nowait(self) -> list[zmq.Frame] | None:
        """One multipart message as frames (zero-copy), or None if none is waiting.

        Frame by frame with ``Frame.more`` (a third of ``recv_multipart``'s cost, which asks
        the socket for RCVMORE through the enum layer after every frame).
        """
        recv = self._sock.recv
        try:
            frame = recv(_DONTWAIT, copy=False)
        except zmq.Again:
            return None
        frames = [frame]
        while frame.more:
            frame = recv(0, copy=False)
            frames.append(frame)
        return frames

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if not self._sock.closed:
            self._sock.close(0)


def context_socket(kind: int) -> zmq.Socket[Any]:
    from ._channel import context

    sock: zmq.Socket[Any] = context().socket(kind)
    return sock
