"""Framing: how one message lies in its region, as an Arrow IPC stream behind a header.

The allocator (``_pool``) hands out a region; this module writes the message into it:

    header (64 B) | IPC stream: schema message, batch message, [body], end-of-stream marker

The header goes last (``seal``): a reader trusts nothing before it says which token the
region holds. A flat array (one data buffer, no nulls) is framed around its bytes: its
stream prefix depends only on its type and length (:class:`StreamFramer` caches it), so
the stream writer's per-call cost (~250 µs cold) is paid once per shape. Any other array
goes through Arrow's stream writer (:func:`serialise`).

No locks here: a :class:`StreamFramer` belongs to its pool's writing thread (the sender),
and the functions write only into a region the caller has reserved.
"""

from __future__ import annotations

import mmap

import pyarrow as pa

from .._cache import BoundedCache
from .._errors import ProtocolError
from .._wire import COLUMN, IPC_EOS
from ._layout import HEADER_SIZE, pack_header, stream_frame
from ._layout import write_stream as _write_stream  # a module global: tests replace it

__all__ = [
    "DATA_ALIGN",
    "FRAME_CACHE_ENTRIES",
    "Framed",
    "StreamFramer",
    "data_offset",
    "frame_in_place",
    "seal",
    "serialise",
]

#: Where a flat value's bytes start in its region: 64-byte aligned (Arrow's own alignment).
DATA_ALIGN = 64

#: Shapes (type, length) whose stream prefix is kept; a stream of frames has one shape, so
#: this is a bound against a sender of ever-changing lengths, not a working-set size.
FRAME_CACHE_ENTRIES = 64

#: A flat value's stream prefix (schema + batch message) and the body length it announces.
Framed = tuple[bytes, int]


class StreamFramer:
    """The IPC stream prefix of flat values, cached per (type, length).

    Owner: the pool's writing thread (``write``/``publish`` run on the sender's side only).
    """

    __slots__ = ("_frames",)

    def __init__(self) -> None:
        self._frames: BoundedCache[tuple[pa.DataType, int], Framed | None] = BoundedCache(FRAME_CACHE_ENTRIES)

    def framed(self, value: pa.Array) -> Framed | None:
        """The stream prefix and body length of a flat ``value``; None when its schema is too
        large to frame this way."""
        key = (value.type, len(value))
        try:
            return self._frames[key]
        except KeyError:
            pass
        try:
            framed: Framed | None = stream_frame(pa.RecordBatch.from_arrays([value], [COLUMN]))
        except ProtocolError:
            framed = None
        return self._frames.put(key, framed)


def data_offset(prefix: bytes) -> int:
    """Where a flat value's bytes go after the header and ``prefix``: aligned to DATA_ALIGN."""
    return HEADER_SIZE + -(-len(prefix) // DATA_ALIGN) * DATA_ALIGN


def frame_in_place(
    mm: mmap.mmap, at: int, prefix: bytes, nbytes: int, body_length: int, token: int, pid: int
) -> tuple[int, int]:
    """Make the ``nbytes`` of values at ``at`` in ``mm`` the message ``token``: ``(start, length)``.

    Writes the stream's ``prefix`` (from :meth:`StreamFramer.framed`) right before the values,
    zero padding up to ``body_length`` and the end marker after them, then the header (last).
    The header lies at ``start - HEADER_SIZE``.
    """
    start, end = at - len(prefix), at + body_length
    mm[start:at] = prefix
    if body_length > nbytes:
        mm[at + nbytes : end] = bytes(body_length - nbytes)
    mm[end : end + len(IPC_EOS)] = IPC_EOS
    length = end + len(IPC_EOS) - start
    seal(mm, start - HEADER_SIZE, token, length, pid)
    return start, length


def seal(mm: mmap.mmap, at: int, token: int, length: int, pid: int) -> None:
    """Write the header of message ``token`` at ``at`` (``length`` bytes of stream follow it)."""
    pack_header(mm, at, token, length, pid)


def serialise(mm: mmap.mmap, base: int, batch: pa.RecordBatch, size: int) -> int | None:
    """Write ``batch``'s IPC stream right after the header at ``base``; its size, or None if
    ``size`` (the estimate the region was reserved for) was wrong."""
    at = base + HEADER_SIZE
    view = memoryview(mm)[at : at + size]
    try:
        return _write_stream(view, batch, size)
    finally:
        view.release()  # every Arrow object over it is gone once _write_stream returned
