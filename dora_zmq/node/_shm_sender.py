"""The sending half of the same-host shared-memory path, as a node uses it.

A value of at least ``DORA_ZMQ_SHM_THRESHOLD`` bytes (default 64 KiB; 0 turns the path off)
on an output whose subscribers all run on this machine is written once into a shared-memory
segment; ZeroMQ carries only its descriptor. Anything else -- a subscriber on another host,
a dynamic subscriber that may join from anywhere, a full pool -- goes over the socket as usual.

Segments are reused once every subscriber released its message: each subscriber sends a
release upstream on its data connection when its application drops the value. A subscriber
that disconnects (exits or crashes) releases everything it held (its barrier marker is
unsubscribed). At exit the node unlinks only released segments; the daemon removes the rest
when the dataflow ends, because a subscriber may not have mapped them yet.

Owner: the holder of the node's send lock (``Outputs.lock``); every method but
``post_peers`` runs under it. New peer lists come from the receive step as messages
(``post_peers``), applied by the owner before it decides how to send.
"""

from __future__ import annotations

import collections
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Mapping

import pyarrow as pa

from .. import _control as ctl
from .._cache import BoundedCache
from .._errors import ProtocolError
from .._shm import SegmentPool, ShmDescriptor
from .._transport import Publisher
from .._wire import encode_shm_frames, flat_values, parse_marker, parse_release
from ._readers import ReaderTokens
from ._samples import OutputSample

if TYPE_CHECKING:
    from ..descriptor import Dataflow

__all__ = ["ShmSender", "shm_threshold"]

log = logging.getLogger(__name__)

#: From 64 KiB up shared memory moves more messages per second than the socket (pyzmq sends
#: frames of 64 KiB and more zero-copy, through a garbage-collector thread: 2-8k msgs/s at
#: 64 KiB against 9-12k through shared memory); below, the socket's copies are cheaper than
#: the shared-memory bookkeeping (40 KiB: 19-23k msgs/s against 12-15k; in CPU per message,
#: sender and receiver process, 2026-12-06: socket 27 and 33 us, shared memory 36 and 39 us).
_DEFAULT_THRESHOLD = 64 * 1024
#: Output samples remembered by address (reservations whose value may still be sent); a
#: bound, not a working set: an application keeps a few samples in flight.
_SAMPLES_KEPT = 1024


def shm_threshold() -> int:
    """``DORA_ZMQ_SHM_THRESHOLD`` in bytes (0 = never use shared memory)."""
    try:
        return max(0, int(os.environ.get("DORA_ZMQ_SHM_THRESHOLD", _DEFAULT_THRESHOLD)))
    except ValueError:
        return _DEFAULT_THRESHOLD


class ShmSender:
    """Decides per output whether shared memory can be used, and keeps the segment pool."""

    def __init__(
        self,
        dataflow_id: str,
        node_id: str,
        machine: str,
        descriptor: Dataflow,
        outputs: tuple[str, ...],
        readers: ReaderTokens,
    ) -> None:
        from ..descriptor import NodeKind  # the parser's module: Node() has imported it already

        self.threshold = shm_threshold()
        self._readers = readers
        self._dataflow_id = dataflow_id
        self._node_id = node_id
        self._machine = machine
        self._pool: SegmentPool | None = None
        self._subscribers: dict[str, frozenset[str]] = {}
        self._dynamic: set[str] = set()
        for out in outputs:
            nodes = {n for n, _ in descriptor.subscribers(node_id, out)}
            self._dynamic |= {out for n in nodes if descriptor.node(n).kind is NodeKind.DYNAMIC}
            self._subscribers[out] = frozenset(nodes)
        # All owned by the send lock's holder:
        self._local: set[str] = set()  # subscriber nodes on this machine
        self._gone: set[str] = set()  # subscribers that disconnected or exited
        self._eligible: dict[str, frozenset[str]] = {}
        # data address of a shared-memory sample -> token
        self._samples: BoundedCache[int, int] = BoundedCache(_SAMPLES_KEPT)
        self.drained_at = 0.0  # monotonic time of the last drain (see Outputs.reclaim)
        # Peer lists posted by the receive step (any thread; a deque append is atomic).
        self._inbox: collections.deque[ctl.Peers] = collections.deque()

    def post_peers(self, peers: ctl.Peers) -> None:
        """Endpoints changed (any thread): applied by the owner before its next decision."""
        self._inbox.append(peers)

    def _apply_inbox(self) -> None:
        while self._inbox:
            self._update_peers(self._inbox.popleft())

    def _update_peers(self, peers: ctl.Peers) -> None:
        """Recompute which outputs may use shared memory (owner only)."""
        self._local = {n for n, ep in peers.endpoints.items() if ep.machine == self._machine and ep.ipc}
        for node in set(peers.exited) - self._gone:
            self._reader_gone(node)  # its disconnection may reach this node later, or first
        self._recompute()

    def _recompute(self) -> None:
        eligible = {}
        for out, subs in self._subscribers.items():
            live = subs - self._gone
            if out not in self._dynamic and live and live <= self._local:
                eligible[out] = frozenset(live)
        self._eligible = eligible

    def allocate(self, pub: Publisher, output_id: str, nbytes: int) -> OutputSample:
        """Memory for one message on ``output_id``: shared memory when it can go zero-copy."""
        if self._pool is not None:
            self.drain(pub)
        if self._inbox:
            self._apply_inbox()
        if self.threshold and nbytes >= self.threshold and self._eligible.get(output_id):
            reservation = self._ensure_pool().reserve(nbytes)
            if reservation is not None:
                self._samples.put(reservation.address, reservation.token)
                return OutputSample(reservation.owner, reservation.buffer, reservation.token)
        return OutputSample.on_heap(nbytes)

    def frames(
        self, output_id: str, topic: bytes, seq: int, value: pa.Array, metadata: Mapping[str, Any] | None
    ) -> list[Any] | None:
        """Frames carrying ``value`` through shared memory, or None to send it on the socket.

        Called with the node's send lock held.
        """
        if self._inbox:
            self._apply_inbox()
        readers = self._eligible.get(output_id)
        # get_total_buffer_size is O(1); nbytes walks the array (2 us hot, ~15 us cold).
        if not readers or value.get_total_buffer_size() < self.threshold:
            return None
        # Releases are applied after the send (``after_send``), off the message's path: a
        # segment released meanwhile waits one message longer, costing the pool one segment.
        pool = self._ensure_pool()
        token = self._sample_token(value)
        desc = pool.publish(token, value, readers) if token is not None else None
        if desc is None:
            desc = pool.write(value, readers)
        if desc is None:
            return None
        return encode_shm_frames(topic, seq, desc.encode(), metadata)

    def _sample_token(self, value: pa.Array) -> int | None:
        """The reservation ``value`` lies at the start of, if any (then it needs no copy)."""
        data = flat_values(value) if self._samples else None
        return self._samples.get(data.address) if data is not None else None

    def _ensure_pool(self) -> SegmentPool:
        if self._pool is None:
            self._pool = SegmentPool(self._dataflow_id, self._node_id, unlink_at_exit=False)
        return self._pool

    def after_send(self, pub: Publisher) -> None:
        """Apply what receivers reported (releases, departures) once a message has left."""
        if self._pool is not None:
            self.drain(pub)

    @property
    def holds_segments(self) -> bool:
        """Whether a pool exists (then releases may wait on the publisher socket)."""
        return self._pool is not None

    def drain(self, pub: Publisher) -> None:
        """Apply the peer lists posted, then the releases and disconnects waiting on ``pub``."""
        if self._pool is not None:
            self.drained_at = time.monotonic()
        if self._inbox:
            self._apply_inbox()
        for message in pub.read_subscriptions():
            release = parse_release(message)
            if release is not None:
                if (reader := self._readers.reader_of(release[0], "a shared-memory release")) is not None:
                    self._release(reader, release[1])
                continue
            marker = parse_marker(message)
            if marker is None:
                continue
            subscribed, label = marker
            node = self._readers.reader_of(label, "a start marker")
            if node is None:
                continue
            if subscribed:
                if node in self._gone:
                    self._gone.discard(node)
                    self._recompute()
            elif node not in self._gone:
                self._reader_gone(node)
                self._recompute()

    def _reader_gone(self, node: str) -> None:
        """``node`` exited or disconnected: it reads no more, and what it held is released."""
        self._gone.add(node)
        if self._pool is not None:
            self._pool.reader_gone(node)

    def _release(self, reader: str, raw: bytes) -> None:
        if self._pool is None:
            return
        try:
            descs = ShmDescriptor.decode_all(raw)  # a receiver sends what it released at once
        except ProtocolError as exc:
            log.warning("node %s: ignoring a malformed shared-memory release from %s: %s", self._node_id, reader, exc)
            return
        pid = os.getpid()
        for desc in descs:
            if desc.pid == pid:
                self._pool.release(desc.token, reader)

    def close(self) -> None:
        """Unlink released segments; leave unreleased ones for the daemon's cleanup."""
        if self._pool is not None:
            self._pool.close(keep_in_use=True)
