"""The sender's side: a pool of shared-memory segments that Arrow values are written into.

This module is the allocator (which region a message gets, who holds it, when it is free);
how a message is laid out inside its region is ``_framing``'s job.

Why a pool: a fresh tmpfs segment costs a page fault (and zeroing) per 4 KiB page on first
touch, about 18 ms for 16 MiB here, while writing into a segment already mapped costs one
memcpy (about 0.65 ms). Memory is therefore kept and reused once every reader has released
the message it holds; only when the pool would exceed ``max_bytes`` are free files unlinked.
A value of more than 1 MiB gets a segment file to itself; a smaller one takes a slot of a
slab (a file of several equal slots, see ``_segment``), so bursts of small values neither
create nor zero a file per message.

Reclamation protocol (the caller moves these messages; this module does no I/O but files):

1. ``desc = pool.write(value, readers)`` reserves a segment, writes the value once, and returns
   a descriptor (``None`` when no segment can be had: send the value over the socket instead).
2. Each reader hands the token back when its application dropped the value:
   ``pool.release(desc.token, reader)``. When all have, the segment is free for reuse.
3. ``pool.reader_gone(reader)`` when a reader died: whatever it held is released.
4. ``pool.close()`` unlinks every segment (also done at interpreter exit if forgotten).

Readers are named (any hashable, e.g. node ids) rather than counted, so a duplicated release
is harmless and a dead reader's share can be found.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import threading
import weakref
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import pyarrow as pa

from .._wire import COLUMN, IPC_EOS, byte_width, flat_values
from ._descriptor import ShmDescriptor
from ._framing import Framed, StreamFramer, data_offset, frame_in_place, seal, serialise
from ._layout import HEADER_SIZE, MIB, SAMPLE_DATA_OFFSET, capacity_for, mark_free, sample_capacity, stream_size
from ._naming import segment_name, shm_dir
from ._segment import SLOT_MAX, Region, SampleOwner, Slab, create_file, destroy_file, slab_slots

__all__ = ["DEFAULT_MAX_BYTES", "PoolStats", "Reservation", "SampleOwner", "SegmentPool", "WRITER"]

log = logging.getLogger(__name__)

#: The most shared memory a pool maps by default, free and in use together.
DEFAULT_MAX_BYTES = 256 * MIB

#: The holder of a reserved segment while the writing application still has views of it.
WRITER = "\0writer"


@dataclass(frozen=True, slots=True)
class Reservation:
    """A segment reserved for a value written in place (see :meth:`SegmentPool.reserve`).

    ``owner`` exposes the data region through ``__array_interface__`` (writable) and is the
    ``base`` of ``buffer``: every NumPy or Arrow view derived from either keeps it alive, and
    its death tells the pool that the application no longer holds the memory.
    """

    token: int
    address: int
    nbytes: int
    owner: "SampleOwner"
    buffer: pa.Buffer


@dataclass(frozen=True, slots=True)
class PoolStats:
    """Counters of a :class:`SegmentPool` (a snapshot)."""

    segments: int
    bytes_total: int
    bytes_in_use: int
    in_use: int
    writes: int
    reused: int
    created: int
    evicted: int
    fallbacks: int


def _destroy_all(segments: dict[str, Region], slabs: dict[str, Slab], pid: int) -> None:
    if os.getpid() != pid:
        return  # a forked child exiting must not unlink its parent's segments
    files: list[Region | Slab] = [*segments.values(), *slabs.values()]
    for f in files:
        destroy_file(f)
    segments.clear()
    slabs.clear()


class SegmentPool:
    """Writes Arrow values into shared-memory segments and tracks who still reads them.

    Thread-safe: ``write`` may run in the application thread while ``release`` and
    ``reader_gone`` run in a transport thread. The lock is never held during the copy or
    while creating a segment.

    Args:
        dataflow_id: the dataflow (first field of segment names, for bulk cleanup).
        node_id: the writing node (second field).
        max_bytes: the most shared memory the pool maps at once, free and in use together.
        directory: where segments live (default :func:`~dora_zmq._shm.shm_dir`).
        unlink_at_exit: unlink every segment at interpreter exit if :meth:`close` was not called.
    """

    def __init__(
        self,
        dataflow_id: str,
        node_id: str,
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        directory: str | os.PathLike[str] | None = None,
        unlink_at_exit: bool = True,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.dataflow_id = dataflow_id
        self.node_id = node_id
        self.max_bytes = max_bytes
        self.directory = os.fspath(directory) if directory is not None else shm_dir()
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._segments: dict[str, Region] = {}  # files holding one (large) message each
        self._free: list[Region] = []
        self._slabs: dict[str, Slab] = {}
        self._free_slots: dict[int, list[Region]] = {}  # by slot size; the last freed at the end
        self._by_token: dict[int, Region] = {}
        self._reserved = 0  # bytes of segments being created (counted against max_bytes)
        self._names = itertools.count()
        # random start: a restarted writer is unlikely to repeat a token a reader has seen
        self._tokens = itertools.count((int.from_bytes(os.urandom(6), "big") >> 1) + 1)  # 47 random bits
        self._tick = itertools.count(1)
        self._closed = False
        # Samples whose views all died, reported by finalizers that may run inside garbage
        # collection while this thread holds _lock: applied under the lock later.
        self._dropped: collections.deque[int] = collections.deque()
        self._framer = StreamFramer()  # owner: the writing thread (write/publish), no lock
        self._writes = self._reused = self._created = self._evicted = self._fallbacks = 0
        self._finalizer = weakref.finalize(self, _destroy_all, self._segments, self._slabs, self._pid)
        # A node closes its pool itself (keeping unreleased messages for its receivers) in its
        # own exit hook; weakref's exit hook would run first and unlink them all.
        self._finalizer.atexit = unlink_at_exit

    # -- sending ---------------------------------------------------------------------------

    def write(self, value: pa.Array, readers: Iterable[Hashable]) -> ShmDescriptor | None:
        """Serialise ``value`` into a segment, held until every reader in ``readers`` released it.

        Args:
            value: the array to send.
            readers: who will read it (e.g. the receiving node ids); each must call
                :meth:`release` (or be declared gone with :meth:`reader_gone`).

        Returns:
            The descriptor to send, or ``None`` when the pool cannot hold the value (too big,
            or full of segments still in use): send the value over the socket instead.

        Raises:
            TypeError: ``value`` is not a ``pyarrow.Array``, or ``readers`` is a string.
            ValueError: ``readers`` is empty.
            RuntimeError: the pool is closed.
        """
        if not isinstance(value, pa.Array):
            raise TypeError(f"SegmentPool.write takes a pyarrow.Array, got {type(value).__name__}")
        if isinstance(readers, (str, bytes)):
            raise TypeError("readers must be a collection of reader ids, not one string")
        holders = set(readers)
        if not holders:
            raise ValueError("a shared-memory message needs at least one reader")
        data = flat_values(value)
        framed = self._framer.framed(value) if data is not None else None
        if data is not None and framed is not None:
            return self._write_flat(data, framed, holders)
        batch = pa.RecordBatch.from_arrays([value], [COLUMN])
        size = stream_size(batch)
        taken = self._acquire(HEADER_SIZE + size, holders)
        if taken is None:
            return None
        seg, token = taken
        written: int | None = None
        try:
            written = serialise(seg.mm, seg.base, batch, size)
            if written is None:  # the quick size estimate was off (never seen): measure
                exact = pa.MockOutputStream()
                with pa.ipc.new_stream(exact, batch.schema) as w:
                    w.write_batch(batch)
                size = exact.size()
                if HEADER_SIZE + size <= seg.size:
                    written = serialise(seg.mm, seg.base, batch, size)
            if written is not None:
                seal(seg.mm, seg.base, token, written, self._pid)
                seg.header_at = seg.base
        except BaseException:
            written = None  # the finally clause frees the segment, then this propagates
            raise
        finally:
            with self._lock:
                if written is None:
                    seg.readers.clear()
                self._end_write(seg)
        if written is None:
            log.warning("Arrow IPC size estimate was wrong for %s; sent over the socket", value.type)
            with self._lock:
                self._fallbacks += 1
            return None
        return ShmDescriptor(seg.name, seg.base + HEADER_SIZE, written, token, self._pid)

    def _write_flat(self, data: pa.Buffer, framed: Framed, holders: set[Hashable]) -> ShmDescriptor | None:
        """Write a flat array's ``data`` (one buffer, no nulls) as its stream prefix plus one copy.

        Arrow's stream writer costs about 250 µs a message on a cold path here (per-call
        overhead, not bytes); a flat array's stream is a prefix that depends only on its type
        and length (``framed``), then its bytes, then the end marker.
        """
        prefix, body_length = framed
        at = data_offset(prefix)
        taken = self._acquire(at + body_length + len(IPC_EOS), holders)
        if taken is None:
            return None
        seg, token = taken
        at += seg.base
        try:
            seg.mm[at : at + data.size] = data
            start, length = self._frame(seg, at, prefix, data.size, body_length, token)

        except BaseException:
            with self._lock:
                seg.readers.clear()
                self._end_write(seg)
            raise
        with self._lock:
            self._end_write(seg)
        return ShmDescriptor(seg.name, start, length, token, self._pid)

    def _frame(self, seg: Region, at: int, prefix: bytes, nbytes: int, body_length: int, token: int) -> tuple[int, int]:
        """Frame the values at ``at`` in ``seg`` as message ``token`` (see ``frame_in_place``)."""
        start, length = frame_in_place(seg.mm, at, prefix, nbytes, body_length, token, self._pid)
        seg.header_at = start - HEADER_SIZE
        return start, length

    # -- writing in place (output samples) -------------------------------------------------

    def reserve(self, nbytes: int) -> Reservation | None:
        """A segment for an ``nbytes`` value that the application writes in place.

        The segment is held by :data:`WRITER` until every view of the reservation is gone,
        and by the readers of :meth:`publish` until they release it, so it is reused only
        when nobody can see it any more. None when the pool cannot hold it.
        """
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, got {nbytes}")
        taken = self._acquire(sample_capacity(nbytes), {WRITER})
        if taken is None:
            return None
        seg, token = taken
        with self._lock:
            seg.writing = False
            if seg.export is None:
                seg.export = pa.py_buffer(seg.mm)
            export = seg.export
        address = export.address + seg.base + SAMPLE_DATA_OFFSET
        owner = SampleOwner(export, address, nbytes)
        weakref.finalize(owner, self._dropped.append, token).atexit = False
        buffer = pa.foreign_buffer(address, nbytes, base=owner)
        return Reservation(token, address, nbytes, owner, buffer)

    def publish(self, token: int, value: pa.Array, readers: Iterable[Hashable]) -> ShmDescriptor | None:
        """Send a reservation's value, which lies at its data address: frame it, no copy.

        Writes the IPC stream's prefix before the data and its end after, then hands the
        segment to ``readers`` as :meth:`write` does. None if ``token`` is not a live
        reservation or ``value`` does not fit it (the caller sends a copy instead).
        """
        holders = set(readers)
        framed = self._framer.framed(value)
        if framed is None:  # a schema too large to frame in place: send a copy
            return None
        prefix, body_length = framed
        with self._lock:
            self._apply_dropped()
            seg = self._by_token.get(token)
            if seg is None or seg.published or seg.readers != {WRITER}:
                return None  # dropped, or published already
            nbytes = len(value) * byte_width(value.type)
            if not nbytes or SAMPLE_DATA_OFFSET + body_length + len(IPC_EOS) > seg.size or body_length < nbytes:
                return None
            start, length = self._frame(seg, seg.base + SAMPLE_DATA_OFFSET, prefix, nbytes, body_length, token)
            seg.readers |= holders
            seg.published = True
        return ShmDescriptor(seg.name, start, length, token, self._pid)

    def _apply_dropped(self) -> None:
        """Lock held. The application dropped these reservations: release its hold."""
        while self._dropped:
            token = self._dropped.popleft()
            seg = self._by_token.get(token)
            if seg is not None and WRITER in seg.readers:
                seg.readers.discard(WRITER)
                if not seg.readers and not seg.writing:
                    self._free_segment(seg)

    # -- reclaiming ------------------------------------------------------------------------

    def release(self, token: int, reader: Hashable) -> bool:
        """Mark ``reader`` done with message ``token``; the segment is free once all are.

        Returns:
            False for an unknown token or a reader that does not hold it (duplicates, late
            releases after :meth:`reader_gone`), which is harmless.
        """
        with self._lock:
            self._apply_dropped()
            seg = self._by_token.get(token)
            if seg is None or reader not in seg.readers:
                log.debug("ignoring release of token %s by %r", token, reader)
                return False
            seg.readers.discard(reader)
            if not seg.readers and not seg.writing:
                self._free_segment(seg)
            return True

    def reader_gone(self, reader: Hashable) -> int:
        """Release every message ``reader`` still holds (it crashed or left).

        Returns:
            How many messages it held.
        """
        with self._lock:
            held = [seg for seg in self._by_token.values() if reader in seg.readers]
            for seg in held:
                seg.readers.discard(reader)
                if not seg.readers and not seg.writing:
                    self._free_segment(seg)
        if held:
            log.info("reader %r gone: released %d shared-memory message(s)", reader, len(held))
        return len(held)

    def outstanding(self) -> dict[int, frozenset[Hashable]]:
        """Messages not yet released: token -> readers still holding it (for diagnostics)."""
        with self._lock:
            return {t: frozenset(s.readers) for t, s in self._by_token.items()}

    def stats(self) -> PoolStats:
        """A snapshot of the pool's counters."""
        with self._lock:
            used = list(self._by_token.values())
            return PoolStats(
                segments=len(self._segments) + len(self._slabs),
                bytes_total=self._files_bytes(),
                bytes_in_use=sum(s.size for s in used),
                in_use=len(used),
                writes=self._writes,
                reused=self._reused,
                created=self._created,
                evicted=self._evicted,
                fallbacks=self._fallbacks,
            )

    def close(self, keep_in_use: bool = False) -> None:
        """Unlink and unmap every segment. Readers keep what they already mapped.

        Args:
            keep_in_use: leave the files of messages not yet released in place (only unmap
                them). A writer that exits must not unlink a message a receiver has not
                opened yet; the daemon removes the files when the dataflow ends
                (:func:`cleanup_segments`).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            kept: dict[str, Region | Slab] = {}
            if keep_in_use:
                for seg in self._by_token.values():
                    f = seg.slab or seg
                    kept[f.name] = f
                    (self._slabs if seg.slab is not None else self._segments).pop(f.name, None)
            self._free.clear()
            self._free_slots.clear()
            self._by_token.clear()
        for f in kept.values():
            try:
                f.mm.close()
            except BufferError:
                pass
        self._finalizer()  # runs _destroy_all once

    def __enter__(self) -> SegmentPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals (the lock is held where noted) ------------------------------------------

    def _acquire(self, needed: int, holders: set[Hashable]) -> tuple[Region, int] | None:
        """Reserve a region of at least ``needed`` bytes: a free one, else a new file."""
        capacity = capacity_for(needed)
        slotted = capacity <= SLOT_MAX
        with self._lock:
            if self._closed:
                raise RuntimeError("SegmentPool is closed")
            self._apply_dropped()
            if slotted:  # the slot freed last: its memory is warm
                free = self._free_slots.get(capacity)
                seg = free.pop() if free else None
            else:
                seg = self._best_fit(needed)
            if seg is not None:
                self._reused += 1
                return seg, self._take(seg, holders)
            size = capacity * slab_slots(capacity, self.max_bytes) if slotted else capacity
            victims = self._make_room(size)
            if victims is None:
                self._fallbacks += 1
                log.debug("shared-memory pool full: %d B needed, falling back", needed)
                return None
            self._reserved += size
        for victim in victims:
            destroy_file(victim)
        try:
            name, path, mm = create_file(self.directory, self._next_name, size)
        except BaseException:
            with self._lock:
                self._reserved -= size
            raise
        slab = Slab(name, path, size, mm, capacity) if slotted else None
        with self._lock:
            self._reserved -= size
            if self._is_closed():  # closed while the file was being created (lock released)
                destroy_file(slab or Region(name, path, size, mm))
                raise RuntimeError("SegmentPool is closed")
            self._created += 1
            if slab is None:
                seg = self._segments[name] = Region(name, path, size, mm)
            else:
                self._slabs[name] = slab
                seg, *rest = slab.slots
                self._free_slots.setdefault(capacity, [])[:0] = reversed(rest)
            return seg, self._take(seg, holders)

    def _is_closed(self) -> bool:
        """Lock held. Whether :meth:`close` ran (a call: it may have run since the last look)."""
        return self._closed

    def _next_name(self) -> str:
        return segment_name(self.dataflow_id, self.node_id, self._pid, next(self._names))

    def _best_fit(self, needed: int) -> Region | None:
        """Lock held. The smallest free segment that fits (the most recently used on ties)."""
        best: Region | None = None
        for seg in self._free:
            if seg.size >= needed and (
                best is None or seg.size < best.size or (seg.size == best.size and seg.last_used > best.last_used)
            ):
                best = seg
        if best is not None:
            self._free.remove(best)
        return best

    def _files_bytes(self) -> int:
        return sum(s.size for s in self._segments.values()) + sum(s.size for s in self._slabs.values())

    def _make_room(self, size: int) -> list[Region | Slab] | None:
        """Lock held. Free files to remove (least recently used first) so ``size`` more fits.

        Free segments and slabs with no message in any slot can go. Returns None, removing
        nothing, when even removing all of them is not enough.
        """
        excess = self._files_bytes() + self._reserved + size - self.max_bytes
        if excess <= 0:
            return []
        idle: list[Region | Slab] = [*self._free, *(s for s in self._slabs.values() if s.idle())]
        if excess > sum(f.size for f in idle):
            return None
        victims: list[Region | Slab] = []
        for f in sorted(idle, key=lambda f: f.last_used):
            if excess <= 0:
                break
            victims.append(f)
            excess -= f.size
        for f in victims:
            if isinstance(f, Slab):
                del self._slabs[f.name]
                free = self._free_slots.get(f.slots[0].size, [])
                free[:] = [r for r in free if r.slab is not f]
            else:
                self._free.remove(f)
                del self._segments[f.name]
            self._evicted += 1
        return victims

    def _take(self, seg: Region, holders: set[Hashable]) -> int:
        """Lock held. Give ``seg`` a fresh token (returned) and its readers; it is being written."""
        token = next(self._tokens)
        seg.token = token
        seg.readers = holders
        seg.published = False
        seg.writing = True
        seg.last_used = next(self._tick)
        if seg.slab is not None:
            seg.slab.last_used = seg.last_used
        self._by_token[token] = seg
        self._writes += 1
        return token

    def _end_write(self, seg: Region) -> None:
        """Lock held. The write into ``seg`` is over: free it if nobody holds it any more.

        A region whose readers all released (or went) while it was still being written stays
        reserved until the write ends, so no other write can grab it halfway.
        """
        seg.writing = False
        if not seg.readers:
            self._free_segment(seg)

    def _free_segment(self, seg: Region) -> None:
        """Lock held. Nobody holds ``seg``: forget its token and offer it for reuse."""
        if seg.token is not None:
            self._by_token.pop(seg.token, None)
            seg.token = None
        slab = seg.slab
        if self._closed or (seg.name not in self._slabs if slab is not None else seg.name not in self._segments):
            return  # removed while in use
        if seg.header_at is not None:
            try:
                mark_free(seg.mm, seg.header_at)
            except ValueError:  # unmapped by close()
                return
        if slab is not None:
            self._free_slots.setdefault(seg.size, []).append(seg)
        else:
            self._free.append(seg)
