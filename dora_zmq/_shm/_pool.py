"""The sender's side: a pool of shared-memory segments that Arrow values are written into.

Why a pool: a fresh tmpfs segment costs a page fault (and zeroing) per 4 KiB page on first
touch, about 18 ms for 16 MiB here, while writing into a segment already mapped costs one
memcpy (about 0.65 ms). Segments are therefore kept and reused once every reader has released
the message they hold; only when the pool would exceed ``max_bytes`` are free ones unlinked.

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
import mmap
import os
import secrets
import threading
import weakref
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import pyarrow as pa

from .._errors import ProtocolError
from ._descriptor import ShmDescriptor
from ._layout import (
    COLUMN,
    EOS,
    HEADER_SIZE,
    MIB,
    SAMPLE_DATA_OFFSET,
    capacity_for,
    mark_free,
    pack_header,
    sample_capacity,
    stream_frame,
    stream_size,
)
from ._naming import segment_name, shm_dir

__all__ = ["PoolStats", "Reservation", "SegmentPool", "WRITER"]

log = logging.getLogger(__name__)

_MAP_POPULATE = getattr(mmap, "MAP_POPULATE", 0)
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(
    os, "O_NOFOLLOW", 0
)


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


class SampleOwner:
    """Base object of an output sample's views: alive exactly while one of them is.

    It exposes ``nbytes`` at ``address`` (memory kept alive by ``export``) to NumPy as a
    writable ``uint8`` array whose ``base`` it is.
    """

    __slots__ = ("export", "__array_interface__", "__weakref__")

    def __init__(self, export: pa.Buffer, address: int, nbytes: int) -> None:
        self.export = export  # pins the mapping while views exist
        self.__array_interface__ = {"shape": (nbytes,), "typestr": "|u1", "data": (address, False), "version": 3}


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


class _Segment:
    """One segment file, mapped read-write, and the message it currently holds (if any)."""

    __slots__ = ("name", "path", "size", "mm", "token", "readers", "writing", "last_used", "export", "published")

    def __init__(self, name: str, path: str, size: int, mm: mmap.mmap) -> None:
        self.name = name
        self.path = path
        self.size = size
        self.mm = mm
        self.token: int | None = None
        self.readers: set[Hashable] = set()
        self.writing = False
        self.last_used = 0
        self.export: pa.Buffer | None = None  # a writable view, made for output samples only
        self.published = False  # a reservation sent already (it is sent once)


def _destroy(seg: _Segment) -> None:
    """Unlink and unmap (readers that mapped it keep their memory until they unmap)."""
    try:
        os.unlink(seg.path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not unlink shared-memory segment %s: %s", seg.path, exc)
    seg.export = None
    try:
        seg.mm.close()
    except BufferError:
        pass  # a buffer export is still alive; the mapping goes with it


def _write_stream(view: memoryview, batch: pa.RecordBatch, size: int) -> int | None:
    """Write ``batch`` as an IPC stream into ``view`` (exactly ``size`` bytes, else None)."""
    target = pa.py_buffer(view)
    if not target.is_mutable:  # FixedSizeBufferWriter aborts the process on a read-only buffer
        raise RuntimeError("shared-memory segment is not writable")
    sink = pa.FixedSizeBufferWriter(target)
    try:
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError):
        return None  # overflowed the window: the size estimate was wrong
    written = sink.tell()
    return written if written == size else None


def _byte_width(t: pa.DataType) -> int:
    """Bytes per value of a fixed-width type whose values are whole bytes, else 0."""
    try:
        bits = t.bit_width
    except ValueError:
        return 0
    return bits // 8 if bits % 8 == 0 and not pa.types.is_dictionary(t) else 0


def _destroy_all(segments: dict[str, _Segment], pid: int) -> None:
    if os.getpid() != pid:
        return  # a forked child exiting must not unlink its parent's segments
    for seg in list(segments.values()):
        _destroy(seg)
    segments.clear()


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
        max_bytes: int = 256 * MIB,
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
        self._segments: dict[str, _Segment] = {}
        self._free: list[_Segment] = []
        self._by_token: dict[int, _Segment] = {}
        self._reserved = 0  # bytes of segments being created (counted against max_bytes)
        self._names = itertools.count()
        # random start: a restarted writer is unlikely to repeat a token a reader has seen
        self._tokens = itertools.count(secrets.randbits(47) + 1)
        self._tick = itertools.count(1)
        self._closed = False
        # Samples whose views all died, reported by finalizers that may run inside garbage
        # collection while this thread holds _lock: applied under the lock later.
        self._dropped: collections.deque[int] = collections.deque()
        self._frames: dict[tuple[pa.DataType, int], tuple[bytes, int]] = {}  # see publish
        self._writes = self._reused = self._created = self._evicted = self._fallbacks = 0
        self._finalizer = weakref.finalize(self, _destroy_all, self._segments, self._pid)
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
        batch = pa.RecordBatch.from_arrays([value], [COLUMN])
        size = stream_size(batch)
        taken = self._acquire(HEADER_SIZE + size, holders)
        if taken is None:
            return None
        seg, token = taken
        written: int | None = None
        try:
            written = self._serialise(seg, batch, size)
            if written is None:  # the quick size estimate was off (never seen): measure
                exact = pa.MockOutputStream()
                with pa.ipc.new_stream(exact, batch.schema) as w:
                    w.write_batch(batch)
                size = exact.size()
                if HEADER_SIZE + size <= seg.size:
                    written = self._serialise(seg, batch, size)
            if written is not None:
                pack_header(seg.mm, token, written, self._pid)
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
        return ShmDescriptor(seg.name, HEADER_SIZE, written, token, self._pid)

    @staticmethod
    def _serialise(seg: _Segment, batch: pa.RecordBatch, size: int) -> int | None:
        """Write the IPC stream right after the header; its size, or None if ``size`` was wrong."""
        view = memoryview(seg.mm)[HEADER_SIZE : HEADER_SIZE + size]
        try:
            return _write_stream(view, batch, size)
        finally:
            view.release()  # every Arrow object over it is gone once _write_stream returned

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
        address = export.address + SAMPLE_DATA_OFFSET
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
        key = (value.type, len(value))
        framed = self._frames.get(key)
        if framed is None:  # a stream of frames has one shape: frame it once
            if len(self._frames) > 64:
                self._frames.clear()
            try:
                framed = self._frames[key] = stream_frame(pa.RecordBatch.from_arrays([value], [COLUMN]))
            except ProtocolError:  # a schema too large to frame in place: send a copy
                return None
        prefix, body_length = framed
        with self._lock:
            self._apply_dropped()
            seg = self._by_token.get(token)
            if seg is None or seg.published or seg.readers != {WRITER}:
                return None  # dropped, or published already
            end = SAMPLE_DATA_OFFSET + body_length
            nbytes = len(value) * _byte_width(value.type)
            if not nbytes or end + len(EOS) > seg.size or body_length < nbytes:
                return None
            start = SAMPLE_DATA_OFFSET - len(prefix)
            mm = seg.mm
            mm[start:SAMPLE_DATA_OFFSET] = prefix
            padded = SAMPLE_DATA_OFFSET + nbytes
            if end > padded:
                mm[padded:end] = bytes(end - padded)
            mm[end : end + len(EOS)] = EOS
            length = end + len(EOS) - start
            pack_header(mm, token, length, self._pid)
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
                segments=len(self._segments),
                bytes_total=sum(s.size for s in self._segments.values()),
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
            kept = list(self._by_token.values()) if keep_in_use else []
            for seg in kept:
                self._segments.pop(seg.name, None)
            self._free.clear()
            self._by_token.clear()
        for seg in kept:
            try:
                seg.mm.close()
            except BufferError:
                pass
        self._finalizer()  # runs _destroy_all once

    def __enter__(self) -> SegmentPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals (the lock is held where noted) ------------------------------------------

    def _acquire(self, needed: int, holders: set[Hashable]) -> tuple[_Segment, int] | None:
        """Reserve a segment of at least ``needed`` bytes: best fit, else a new one."""
        with self._lock:
            if self._closed:
                raise RuntimeError("SegmentPool is closed")
            self._apply_dropped()
            seg = self._best_fit(needed)
            if seg is not None:
                self._free.remove(seg)
                self._reused += 1
                return seg, self._take(seg, holders)
            capacity = capacity_for(needed)
            victims = self._make_room(capacity)
            if victims is None:
                self._fallbacks += 1
                log.debug("shared-memory pool full: %d B needed, falling back", needed)
                return None
            self._reserved += capacity
            n = next(self._names)
        for victim in victims:
            _destroy(victim)
        try:
            seg = self._create(capacity, n)
        except BaseException:
            with self._lock:
                self._reserved -= capacity
            raise
        with self._lock:
            self._reserved -= capacity
            if self._closed:
                _destroy(seg)
                raise RuntimeError("SegmentPool is closed")
            self._segments[seg.name] = seg
            self._created += 1
            return seg, self._take(seg, holders)

    def _best_fit(self, needed: int) -> _Segment | None:
        """Lock held. The smallest free segment that fits (the most recently used on ties)."""
        best: _Segment | None = None
        for seg in self._free:
            if seg.size >= needed and (
                best is None
                or seg.size < best.size
                or (seg.size == best.size and seg.last_used > best.last_used)
            ):
                best = seg
        return best

    def _make_room(self, capacity: int) -> list[_Segment] | None:
        """Lock held. Free segments to evict (least recently used first) so ``capacity`` fits.

        Returns None, evicting nothing, when even evicting every free segment is not enough.
        """
        total = sum(s.size for s in self._segments.values()) + self._reserved
        excess = total + capacity - self.max_bytes
        if excess <= 0:
            return []
        if excess > sum(s.size for s in self._free):
            return None
        victims = []
        for seg in sorted(self._free, key=lambda s: s.last_used):
            if excess <= 0:
                break
            victims.append(seg)
            excess -= seg.size
        for seg in victims:
            self._free.remove(seg)
            del self._segments[seg.name]
            self._evicted += 1
        return victims

    def _take(self, seg: _Segment, holders: set[Hashable]) -> int:
        """Lock held. Give ``seg`` a fresh token (returned) and its readers; it is being written."""
        token = next(self._tokens)
        seg.token = token
        seg.readers = holders
        seg.published = False
        seg.writing = True
        seg.last_used = next(self._tick)
        self._by_token[token] = seg
        self._writes += 1
        return token

    def _end_write(self, seg: _Segment) -> None:
        """Lock held. The write into ``seg`` is over: free it if nobody holds it any more.

        A segment whose readers all released (or went) while it was still being written stays
        reserved until the write ends, so no other write can grab it halfway.
        """
        seg.writing = False
        if not seg.readers:
            self._free_segment(seg)

    def _free_segment(self, seg: _Segment) -> None:
        """Lock held. Nobody holds ``seg``: forget its token and offer it for reuse."""
        if seg.token is not None:
            self._by_token.pop(seg.token, None)
            seg.token = None
        if self._closed or seg.name not in self._segments:
            return
        try:
            mark_free(seg.mm)
        except ValueError:  # unmapped by close()
            return
        self._free.append(seg)

    def _create(self, capacity: int, n: int) -> _Segment:
        """Create, size and map a new segment file (no lock: this takes milliseconds)."""
        while True:
            name = segment_name(self.dataflow_id, self.node_id, self._pid, n)
            path = os.path.join(self.directory, name)
            try:
                fd = os.open(path, _OPEN_FLAGS, 0o600)
                break
            except FileExistsError:  # left by an earlier process with our pid: skip the name
                with self._lock:
                    n = next(self._names)
        try:
            os.ftruncate(fd, capacity)
            mm = mmap.mmap(fd, capacity, flags=mmap.MAP_SHARED | _MAP_POPULATE)
        except BaseException:
            os.unlink(path)
            raise
        finally:
            os.close(fd)
        log.debug("created shared-memory segment %s (%d B)", name, capacity)
        return _Segment(name, path, capacity, mm)
