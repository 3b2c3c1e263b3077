"""The receiver's side: Arrow arrays that alias a writer's segment, and knowing when they die.

``open`` maps the segment read-only (once: mappings are cached per segment, since the writer
reuses its segments) and returns an array whose buffers point into the mapping: no copy,
constant time in size. The writer must not reuse the segment while the application holds
the array, or any slice, buffer or zero-copy NumPy view of it; so the reader must learn when
the *last* such reference is gone.

Why a ``foreign_buffer`` owner and not a finalizer on a ``pa.Buffer``: a Python ``pa.Buffer``
is only a wrapper, and the arrays read from it hold the underlying C++ buffer, not the
wrapper; a finalizer on the wrapper fires while the data is still in use. Instead every
opened message gets a small owner object passed as ``base`` of ``pa.foreign_buffer``: Arrow
keeps a reference to it for as long as any C++ buffer derived from it (slices, child arrays,
NumPy views) lives, and the owner's ``__del__`` calls ``on_release`` (see ``_Owner``).

``on_release`` runs in whatever thread drops the last reference, possibly inside the garbage
collector while that thread holds a lock. It must be quick, must not raise and must not take
a lock that thread could hold: append to a ``collections.deque`` or put into a
``queue.SimpleQueue`` (reentrant), and send the release from the transport thread.
"""

from __future__ import annotations

import collections
import functools
import logging
import mmap
import os
import stat
import threading
from dataclasses import dataclass
from collections.abc import Callable

import pyarrow as pa

from .._cache import BoundedCache
from .._errors import ProtocolError
from .._wire import DECODE_ERRORS, MESSAGE_HEAD, checked, has_dictionary, is_flat, message_length, reject_compressed
from ._descriptor import ShmDescriptor
from ._layout import HEADER_SIZE, MIB, unpack_header
from ._naming import shm_dir

__all__ = ["ReaderStats", "SegmentReader"]

log = logging.getLogger(__name__)

_MAP_POPULATE = getattr(mmap, "MAP_POPULATE", 0)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)

ReleaseCallback = Callable[[ShmDescriptor], None]

#: What reading a forged or damaged message may raise (each becomes a ProtocolError).
_OPEN_ERRORS: tuple[type[BaseException], ...] = (ProtocolError, *DECODE_ERRORS)

#: Distinct schema prefixes whose parsed schema is kept (a peer sends a handful of shapes;
#: the bound keeps a peer that sends ever-new ones from growing the cache without end).
SCHEMA_CACHE_ENTRIES = 64


@dataclass(frozen=True, slots=True)
class ReaderStats:
    """Counters of a :class:`SegmentReader` (a snapshot)."""

    mapped: int
    mapped_bytes: int
    live: int
    opened: int
    released: int
    failed: int


class _Mapping:
    """One segment mapped read-only, and how many opened messages still alias it."""

    __slots__ = ("name", "mm", "buf", "address", "size", "dev", "ino", "live", "last_used")

    def __init__(self, name: str, mm: mmap.mmap, dev: int, ino: int) -> None:
        self.name = name
        self.mm = mm
        self.buf: pa.Buffer | None = pa.py_buffer(mm)
        self.address = self.buf.address
        self.size = len(mm)
        self.dev = dev
        self.ino = ino
        self.live = 0
        self.last_used = 0

    def unmap(self) -> None:
        """Drop the mapping now if nothing aliases it, else when the last alias goes.

        Safe whatever the bookkeeping says: every owner holds the buffer export of the
        mapping, and ``mmap.close`` refuses (``BufferError``) while an export lives.
        """
        self.buf = None
        try:
            self.mm.close()
        except BufferError:
            pass  # still aliased: unmapped by the garbage collector after the last owner


class _Owner:
    """The ``base`` of one opened message's foreign buffer: alive while any alias is.

    It holds the mapping's buffer export, which pins the mapping (see ``_Mapping.unmap``).
    Its ``__del__`` reports the release: cheaper than a ``weakref.finalize`` per message,
    with the same timing (the last reference dropped, or the garbage collector).
    """

    __slots__ = ("mapping", "export", "died")

    def __init__(self, mapping: _Mapping) -> None:
        self.mapping = mapping
        self.export = mapping.buf
        self.died: Callable[[], None] | None = None

    def __del__(self) -> None:
        died, self.died = self.died, None
        if died is not None:
            died()


class SegmentReader:
    """Opens shared-memory descriptors as zero-copy Arrow arrays, and reports their release.

    Every descriptor given to :meth:`open` or :meth:`discard` leads to exactly one
    ``on_release(descriptor)`` call: when the returned array (and everything derived from it)
    is garbage, when ``open`` fails, or at once for ``discard``. The caller sends
    ``descriptor.token`` back to the writer. After :meth:`close` no more calls are made (the
    writer learns of the reader's end through ``reader_gone``).

    Args:
        on_release: called with the descriptor once its data is no longer referenced; may run
            in any thread (see the module docstring for what it may do).
        directory: where segments live (default :func:`~dora_zmq._shm.shm_dir`).
        max_cached_bytes: idle mappings kept beyond this total are unmapped, least recently
            used first. Mappings of segments the writer removed are unmapped when idle,
            whatever the total (they would pin the memory).
    """

    def __init__(
        self,
        on_release: ReleaseCallback | None = None,
        *,
        directory: str | os.PathLike[str] | None = None,
        max_cached_bytes: int = 1024 * MIB,
    ) -> None:
        self._on_release = on_release
        self.directory = os.fspath(directory) if directory is not None else shm_dir()
        self.max_cached_bytes = max_cached_bytes
        self._lock = threading.Lock()
        # Not a BoundedCache: its entries are live mappings, bounded by bytes and pruned
        # least recently used first, never all at once (see _prune).
        self._maps: dict[str, _Mapping] = {}
        # mappings whose messages died, appended by finalizers in any thread and drained
        # under the lock (a finalizer never takes the lock: it may run inside it)
        self._dead: collections.deque[_Mapping] = collections.deque()
        # None: read as a stream. Used under no lock: open() runs on one thread at a time
        # (the node's receiving side); a racing put would only cost a re-parse.
        self._schemas: BoundedCache[bytes, pa.Schema | None] = BoundedCache(SCHEMA_CACHE_ENTRIES)
        self._tick = 0
        self._closed = False
        self._opened = self._failed = self._live = 0

    def open(self, desc: ShmDescriptor) -> pa.Array:
        """The array ``desc`` points at, aliasing the shared memory (no copy).

        The array is validated against its buffers before it is returned (the writer is a
        peer: see ``dora_zmq._wire._guard``); a flat one (fixed width, no nulls) only for
        buffer sizes, in constant time.

        Raises:
            ProtocolError: the segment is missing, not ours, too small, or holds another
                message than ``desc`` (a stale or forged descriptor), or its Arrow data is not
                valid; nothing else. ``on_release`` has already been called for ``desc`` then.
            RuntimeError: the reader is closed.
        """
        try:
            owner = self._owner(desc)
        except ProtocolError:
            self._notify(desc)
            raise
        mapping = owner.mapping
        # from here on, whatever happens, the owner's death reports the release exactly once
        owner.died = functools.partial(self._died, mapping, desc)
        buf = pa.foreign_buffer(mapping.address + desc.offset, desc.length, base=owner)
        del owner
        error = ""
        try:
            batch = self._read_batch(buf)
            if batch.num_columns == 1:
                return _checked_column(batch)
            error = f"{batch.num_columns} columns, expected 1"
            del batch
        except _OPEN_ERRORS as exc:
            error = str(exc) or type(exc).__name__
        del buf
        # raised outside the except block, so no traceback keeps the buffer (and the segment)
        raise ProtocolError(f"shared-memory segment {desc.segment}: bad Arrow IPC body: {error}")

    def _read_batch(self, stream: pa.Buffer) -> pa.RecordBatch:
        """The record batch of a one-batch IPC stream, its schema cached by its bytes.

        A stream reader per message re-parses the schema; reading the batch message against
        a cached schema does a third of the work.
        """
        reject_compressed(stream)
        schema_len = message_length(stream, 0)
        at = MESSAGE_HEAD.size + schema_len
        if schema_len <= 0 or at > stream.size:
            return pa.ipc.open_stream(stream).read_next_batch()  # another layout: the slow way
        key = stream.slice(0, at).to_pybytes()
        schema = self._schemas.get(key, False)
        if schema is False:
            schema = pa.ipc.read_schema(pa.py_buffer(key))
            if any(has_dictionary(f.type) for f in schema):
                schema = None  # dictionary batches come first: let a stream reader see them
            self._schemas.put(key, schema)
        if schema is None:
            return pa.ipc.open_stream(stream).read_next_batch()
        return pa.ipc.read_record_batch(stream.slice(at), schema)

    def discard(self, desc: ShmDescriptor) -> None:
        """Give up ``desc`` without opening it (e.g. dropped by a full input queue)."""
        self._notify(desc)

    def trim(self) -> int:
        """Unmap every idle mapping (no live message); returns how many."""
        with self._lock:
            self._drain()
            idle = [m for m in self._maps.values() if m.live == 0]
            for m in idle:
                del self._maps[m.name]
        for m in idle:
            m.unmap()
        return len(idle)

    @property
    def live(self) -> int:
        """Messages opened and not yet released."""
        with self._lock:
            self._drain()
            return self._live

    def stats(self) -> ReaderStats:
        """A snapshot of the reader's counters."""
        with self._lock:
            self._drain()
            return ReaderStats(
                mapped=len(self._maps),
                mapped_bytes=sum(m.size for m in self._maps.values()),
                live=self._live,
                opened=self._opened,
                released=self._opened - self._live,
                failed=self._failed,
            )

    def close(self) -> None:
        """Stop reporting releases and unmap what is idle (live arrays stay valid)."""
        with self._lock:
            self._closed = True
            maps = list(self._maps.values())
            self._maps.clear()
        for m in maps:
            m.unmap()

    def __enter__(self) -> SegmentReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------

    def _owner(self, desc: ShmDescriptor) -> _Owner:
        """Map (or find) the segment, check it holds ``desc``, count one more live message."""
        with self._lock:
            if self._closed:
                raise RuntimeError("SegmentReader is closed")
            self._drain()
            mapping = self._maps.get(desc.segment)
            if mapping is not None and not self._holds(mapping, desc):
                # a cached mapping of an older file of the same name: look again
                self._forget(mapping)
                mapping = None
            if mapping is None:
                mapping = self._map(desc.segment)
                if not self._holds(mapping, desc):
                    self._failed += 1
                    mapping.unmap()
                    raise ProtocolError(
                        f"shared-memory segment {desc.segment} does not hold token "
                        f"{desc.token} (stale or duplicated descriptor)"
                    )
                self._prune()
                self._maps[mapping.name] = mapping
            mapping.live += 1
            self._live += 1
            self._tick += 1
            mapping.last_used = self._tick
            self._opened += 1
            return _Owner(mapping)

    @staticmethod
    def _holds(mapping: _Mapping, desc: ShmDescriptor) -> bool:
        """Whether the segment's header says it holds ``desc``'s message, within bounds."""
        if desc.offset < HEADER_SIZE or desc.offset + desc.length > mapping.size:
            return False
        header = unpack_header(mapping.mm, desc.offset - HEADER_SIZE)  # right before the stream
        return header == (desc.token, desc.length, desc.pid)

    def _map(self, name: str) -> _Mapping:
        """Lock held. Map segment ``name`` read-only; the descriptor is closed right after."""
        path = os.path.join(self.directory, name)
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            self._failed += 1
            raise ProtocolError(f"cannot open shared-memory segment {path}: {exc}") from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size < HEADER_SIZE:
                self._failed += 1
                raise ProtocolError(f"{path} is not a shared-memory segment")
            mm = mmap.mmap(fd, st.st_size, flags=mmap.MAP_SHARED | _MAP_POPULATE, prot=mmap.PROT_READ)
        except OSError as exc:
            self._failed += 1
            raise ProtocolError(f"cannot map shared-memory segment {path}: {exc}") from exc
        finally:
            os.close(fd)
        return _Mapping(name, mm, st.st_dev, st.st_ino)

    def _forget(self, mapping: _Mapping) -> None:
        """Lock held. Drop ``mapping`` from the cache (unmapped once its aliases are gone)."""
        del self._maps[mapping.name]
        if mapping.live == 0:
            mapping.unmap()

    def _prune(self) -> None:
        """Lock held. Unmap idle mappings of removed segments, then LRU beyond the budget."""
        idle = [m for m in self._maps.values() if m.live == 0]
        for m in idle:
            try:
                st = os.stat(os.path.join(self.directory, m.name))
                gone = (st.st_dev, st.st_ino) != (m.dev, m.ino)
            except OSError:
                gone = True
            if gone:
                self._forget(m)
        total = sum(m.size for m in self._maps.values())
        for m in sorted((m for m in idle if m.name in self._maps), key=lambda m: m.last_used):
            if total <= self.max_cached_bytes:
                break
            total -= m.size
            self._forget(m)

    def _drain(self) -> None:
        """Lock held. Account for messages whose finalizer ran."""
        while True:
            try:
                m = self._dead.popleft()
            except IndexError:
                return
            m.live -= 1
            self._live -= 1
            if m.live == 0 and self._maps.get(m.name) is not m:
                m.unmap()  # dropped from the cache while in use

    def _died(self, mapping: _Mapping, desc: ShmDescriptor) -> None:
        """Finalizer: the last alias of ``desc``'s data is gone (any thread; no lock)."""
        self._dead.append(mapping)
        self._notify(desc)

    def _notify(self, desc: ShmDescriptor) -> None:
        if self._closed or self._on_release is None:
            return
        try:
            self._on_release(desc)
        except Exception:  # a finalizer must not raise; a lost release is logged, not fatal
            log.exception("on_release callback failed for shared-memory token %s", desc.token)


def _checked_column(batch: pa.RecordBatch) -> pa.Array:
    """The one column, validated: the segment's writer is a peer like any other."""
    value = batch.column(0)
    return checked(value, flat=is_flat(value))
