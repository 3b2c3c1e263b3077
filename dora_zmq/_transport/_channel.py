"""Control-plane sockets: ROUTER servers, DEALER clients, and polling."""

from __future__ import annotations

import errno
import logging
import os
import threading
from typing import Any, Iterable

import zmq
import zmq.utils.garbage  # noqa: F401 - see below

from .. import _control
from .._errors import ControlError, ProtocolError
from ..security import TRUSTED, Peer, peer_of, secure_client, secure_server, stop_authenticator
from ._options import HEARTBEAT_IVL_MS, HEARTBEAT_TIMEOUT_MS, keep_alive, worth_logging

__all__ = ["Channel", "Poller", "context", "release_context"]

log = logging.getLogger(__name__)

#: The largest control message a peer may send (a dataflow's YAML travels in a few): ZeroMQ
#: drops the connection of a peer that sends more, before allocating it.
MAX_CONTROL_MESSAGE = 8 * 1024 * 1024
# How long a closing client keeps trying to deliver what it queued (a last report, a stop).
_CLIENT_LINGER_MS = 1000

# pyzmq keeps zero-copy send buffers alive through a "garbage" thread that it imports lazily
# and stops in an atexit hook. Importing it here registers that hook before any Node
# registers its own, so (atexit runs last-in, first-out) a node's close() -- which flushes
# queued messages -- runs before pyzmq drops the buffers those messages point into.
_ctx_lock = threading.Lock()
_ctx: zmq.Context[Any] | None = None
_ctx_pid = 0


def context() -> zmq.Context[Any]:
    """The process's one ZeroMQ context (recreated after a fork)."""
    global _ctx, _ctx_pid
    with _ctx_lock:
        if _ctx is None or _ctx_pid != os.getpid():
            _ctx = zmq.Context()
            _ctx_pid = os.getpid()
        return _ctx


def release_context() -> bool:
    """Terminate the process's context if none of its sockets is open; True if it did.

    ``term()`` blocks until queued outgoing messages are sent (bounded by each socket's
    linger). A node calls this as it closes, *before* the interpreter shuts down: zero-copy
    frames point into Python buffers, and pyzmq's own exit hook drops its references to them,
    so a message still in flight at that point would go out with freed memory as its body.
    """
    global _ctx
    with _ctx_lock:
        ctx = _ctx
        if ctx is None or _ctx_pid != os.getpid():
            return False
        stop_authenticator()
        if any(not s.closed for s in list(ctx._sockets)):  # noqa: SLF001 - pyzmq keeps no public list
            return False
        ctx.term()
        _ctx = None
        return True


class Channel:
    """A control socket carrying ``_control`` messages.

    A server (ROUTER) receives ``(peer, message)`` and replies with ``send(msg, to=peer)``; a
    client (DEALER) has ``peer`` always ``b""``. One thread owns a channel.
    """

    def __init__(self, sock: zmq.Socket[Any], server: bool, address: str) -> None:
        self._sock = sock
        self.server = server
        self.address = address
        self.malformed = 0  # messages dropped as malformed

    @classmethod
    def serve(cls, bind: str) -> "Channel":
        """A ROUTER bound at ``bind`` (``tcp://host:0`` picks a free port)."""
        sock = context().socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # an error, not a silent drop, for a gone peer
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a reconnecting peer takes its identity back
        # ZeroMQ's own connection heartbeat, answered by libzmq's I/O thread (no Python load
        # delays it): a peer cut off by the network is disconnected 3 s after its last answer,
        # and a send to it then fails (how the coordinator confirms a silent daemon is gone).
        sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_CONTROL_MESSAGE)
        secure_server(sock)
        channel = cls(sock, True, bind)
        try:
            channel.address = channel.bind(bind)
        except ControlError as exc:
            sock.close(0)
            raise ControlError(f"{exc} (is another coordinator or daemon running?)") from exc
        return channel

    def bind(self, address: str) -> str:
        """Server only: also listen on ``address``; returns the bound address (real port)."""
        try:
            self._sock.bind(address)
        except zmq.ZMQError as exc:
            raise ControlError(f"cannot listen on {address}: {exc}") from exc
        return self._sock.getsockopt_string(zmq.LAST_ENDPOINT)

    @classmethod
    def connect(cls, address: str, identity: str | None = None) -> "Channel":
        """A DEALER connected to ``address`` (connects lazily; the server may start later).

        Its routing id is ``identity`` or, without one, a random one: the servers' sockets hand
        an id over to whoever connects with it (so a peer that reconnects keeps its place), so
        ids must not be guessable -- ZeroMQ's own are a counter. Give ``identity`` a random part.
        """
        sock = context().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, _CLIENT_LINGER_MS)
        keep_alive(sock)  # see _options
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_CONTROL_MESSAGE)
        sock.setsockopt(zmq.ROUTING_ID, (identity or f"peer/{os.urandom(16).hex()}").encode())
        secure_client(sock)
        try:
            sock.connect(address)
        except zmq.ZMQError as exc:
            sock.close(0)
            raise ControlError(f"invalid address {address!r}: {exc}") from exc
        return cls(sock, False, address)

    @property
    def socket(self) -> zmq.Socket[Any]:
        """The underlying socket, for :class:`Poller` only."""
        return self._sock

    def send(self, msg: Any, to: bytes | None = None) -> bool:
        """Send a message; on a server, to ``to``. Returns False if that peer is gone."""
        payload = _control.encode(msg)
        try:
            if self.server:
                if to is None:
                    raise ValueError("a server channel needs a peer")
                self._sock.send_multipart([to, payload], flags=zmq.DONTWAIT)
            else:
                self._sock.send(payload, flags=zmq.DONTWAIT)
        except zmq.Again:
            log.warning("control message %s to %r dropped: peer not reachable", type(msg).__name__, to or self.address)
            return False
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                return False
            raise ControlError(f"cannot send on {self.address}: {exc}") from exc
        return True

    def recv(self, timeout_ms: int | None = None) -> tuple[bytes, Any] | None:
        """The next well-formed message, or None on timeout. Malformed ones are logged and skipped."""
        got = self.recv_from(timeout_ms)
        return None if got is None else (got[0], got[2])

    def recv_from(self, timeout_ms: int | None = None) -> tuple[bytes, Peer, Any] | None:
        """Like :meth:`recv`, with who sent it: the CURVE key (role and name) of its connection.

        Without CURVE every connection is :data:`~dora_zmq.security.TRUSTED` (every role).
        """
        while True:
            if timeout_ms is not None and not self._sock.poll(timeout_ms):
                return None
            frames = self._sock.recv_multipart(copy=False)
            peer = frames[0].bytes if self.server else b""
            try:
                return peer, _sender(frames[-1]), _control.decode(frames[-1].bytes)
            except ProtocolError as exc:
                self._malformed(peer, str(exc))
            except Exception as exc:  # noqa: BLE001 - the codec turns most bad shapes into
                # ProtocolError, not all (a string where a dict field is expected raises
                # AttributeError): whatever a peer sends must not end the owner's event loop.
                self._malformed(peer, f"{type(exc).__name__}: {exc}")
            timeout_ms = 0 if timeout_ms is not None else None

    def _malformed(self, peer: bytes, why: str) -> None:
        self.malformed += 1
        if worth_logging(self.malformed):
            log.warning(
                "dropped malformed control message from %r on %s: %s (%d so far)",
                peer,
                self.address,
                why,
                self.malformed,
            )

    def recv_nowait(self) -> tuple[bytes, Any] | None:
        """A message if one is waiting, else None."""
        return self.recv(0)

    def request(self, msg: Any, timeout_s: float) -> Any:
        """Client only: send ``msg`` and wait for one reply.

        Raises:
            ControlError: when nothing answers within ``timeout_s``.
        """
        self.send(msg)
        got = self.recv(int(timeout_s * 1000))
        if got is None:
            raise ControlError(f"no answer from {self.address} within {timeout_s:g} s")
        return got[1]

    def close(self, linger_ms: int = 0) -> None:
        """Close the socket (idempotent)."""
        if not self._sock.closed:
            self._sock.close(linger_ms)


def _sender(frame: zmq.Frame) -> Peer:
    """The authenticated key behind ``frame``'s connection (ZAP's user id), or TRUSTED without CURVE."""
    try:
        user = frame.get("User-Id")
    except zmq.ZMQError:  # no ZAP handler authenticated this connection: no CURVE
        return TRUSTED
    return peer_of(user if isinstance(user, str) else "")


class Poller:
    """Wait on channels and data sockets together."""

    def __init__(self, members: Iterable[Any] = ()) -> None:
        self._poller = zmq.Poller()
        self._by_socket: dict[Any, Any] = {}
        for m in members:
            self.add(m)

    def add(self, member: Any) -> None:
        """Watch ``member`` (anything with a ``.socket``) for incoming messages."""
        self._by_socket[member.socket] = member
        self._poller.register(member.socket, zmq.POLLIN)

    def remove(self, member: Any) -> None:
        """Stop watching ``member``."""
        self._by_socket.pop(member.socket, None)
        self._poller.unregister(member.socket)

    def wait(self, timeout_ms: int | None) -> list[Any]:
        """Members with something to read (empty on timeout)."""
        try:
            ready = self._poller.poll(timeout_ms)
        except zmq.ZMQError as exc:
            if exc.errno == errno.EINTR:  # ZeroMQ reports the system's errno (pyzmq has no zmq.EINTR)
                return []
            raise
        return [self._by_socket[s] for s, _ in ready if s in self._by_socket]
