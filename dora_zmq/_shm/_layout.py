"""What a segment holds, and how big segments are.

A message is a 64-byte header directly followed by one Arrow IPC stream (schema + one record
batch of one column, laid out as ``dora_zmq._wire`` defines it: the same bytes as the socket
path's body, so a receiver reads both the same way)::

    magic "DZSEG\\0" | version u8 | pad | token u64 | length u64 | writer pid u32 | pad to 64

The header lies right before the stream (at the descriptor's offset minus 64), so one file can
hold many messages: a large message has a segment file to itself, smaller ones take a slot of a
slab file (see ``_pool``). The header repeats the descriptor's token: a reader checks it before
handing out data, so a stale or duplicated descriptor (token already released, slot reused,
writer restarted with the same name) is an error instead of silently wrong data. The writer
zeroes the token when a message's memory becomes free.
"""

from __future__ import annotations

import struct
from typing import Any

import pyarrow as pa

from .._cache import BoundedCache
from .._errors import ProtocolError
from .._wire import IPC_EOS, MESSAGE_HEAD, has_dictionary, message_length

__all__ = [
    "HEADER_SIZE",
    "MIB",
    "SAMPLE_DATA_OFFSET",
    "sample_capacity",
    "stream_frame",
    "capacity_for",
    "mark_free",
    "pack_header",
    "stream_size",
    "unpack_header",
    "write_stream",
]

MIB = 1 << 20
HEADER_SIZE = 64

_MAGIC = b"DZSEG\x00"
_VERSION = 1
_HEADER = struct.Struct("<6sBxQQI")
_MIN_CAPACITY = 64 * 1024
_TOKEN_OFFSET = 8  # where the token lies in the header (for marking a message free)
_TOKEN = struct.Struct("<Q")


def pack_header(buf: Any, at: int, token: int, length: int, pid: int) -> None:
    """Write a header at ``at`` in ``buf`` (a writable buffer such as an mmap)."""
    _HEADER.pack_into(buf, at, _MAGIC, _VERSION, token, length, pid)


def mark_free(buf: Any, at: int) -> None:
    """Zero the token of the header at ``at``: a descriptor still naming it is now stale."""
    _TOKEN.pack_into(buf, at + _TOKEN_OFFSET, 0)


def unpack_header(buf: Any, at: int = 0) -> tuple[int, int, int] | None:
    """``(token, length, pid)`` from the header at ``at``, or ``None`` if it is not ours."""
    if at < 0 or len(buf) < at + HEADER_SIZE:
        return None
    magic, version, token, length, pid = _HEADER.unpack_from(buf, at)
    if magic != _MAGIC or version != _VERSION:
        return None
    return token, length, pid


def capacity_for(needed: int) -> int:
    """Segment size for ``needed`` bytes: a power of two up to 1 MiB, then whole MiB.

    Rounding lets a segment serve the next message of about the same size (typical for a
    stream of frames); whole MiB above 1 MiB keeps waste under 1 MiB, where powers of two
    would make a 16 MiB payload (plus its header) take 32 MiB.
    """
    if needed <= _MIN_CAPACITY:
        return _MIN_CAPACITY
    if needed <= MIB:
        return 1 << (needed - 1).bit_length()
    return -(-needed // MIB) * MIB


#: Schemas whose stream overhead is kept (a bound against a peer of ever-new schemas).
SCHEMA_SIZES_KEPT = 64
#: The most an Arrow IPC body is padded past its values (Arrow pads buffers to 64 bytes).
BODY_PADDING_MAX = 64


class _SchemaSizes:
    """Per-schema cost of the stream around the record batch (schema message + end marker)."""

    def __init__(self) -> None:
        # Owner: any thread (a module-wide cache; a racing put only costs a second dry run).
        self._cache: BoundedCache[pa.Schema, int | None] = BoundedCache(SCHEMA_SIZES_KEPT)

    def overhead(self, schema: pa.Schema) -> int | None:
        """Bytes the stream adds to ``get_record_batch_size``, or None when that is not exact.

        Dictionary-encoded columns add dictionary batches the batch size does not count.
        """
        try:
            return self._cache[schema]
        except KeyError:
            pass
        size: int | None = None
        if not any(has_dictionary(f.type) for f in schema):
            sink = pa.MockOutputStream()
            with pa.ipc.new_stream(sink, schema):
                pass
            size = sink.size()
        return self._cache.put(schema, size)


_sizes = _SchemaSizes()


def stream_size(batch: pa.RecordBatch) -> int:
    """Exact byte size of ``batch`` written as an IPC stream (schema, batch, end marker).

    ``pa.ipc.get_record_batch_size`` plus a cached per-schema overhead costs about 0.5 µs;
    a full dry run into a ``MockOutputStream`` about 5 µs, used only for dictionary columns.
    """
    overhead = _sizes.overhead(batch.schema)
    if overhead is not None:
        body: int = pa.ipc.get_record_batch_size(batch)
        return overhead + body
    sink = pa.MockOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    size: int = sink.size()
    return size


#: Where the data of an output sample (a value written in place, see ``SegmentPool.reserve``)
#: starts in its segment: page-aligned, after the header and room for the stream's prefix.
SAMPLE_DATA_OFFSET = 4096


def sample_capacity(nbytes: int) -> int:
    """Segment size for an output sample of ``nbytes`` (its stream's padding and end included)."""
    return capacity_for(SAMPLE_DATA_OFFSET + nbytes + BODY_PADDING_MAX + len(IPC_EOS))


def stream_frame(batch: pa.RecordBatch) -> tuple[bytes, int]:
    """``(prefix, body_length)`` of ``batch`` as an IPC stream, without copying its body.

    ``prefix`` is the schema message and the record batch message's header: written right
    before a body that is already in place (an output sample), it makes the bytes from there
    on a valid IPC stream once ``IPC_EOS`` follows the body (padded to ``body_length``). Only
    ``batch``'s metadata is serialised: the writer stops at its first body write, which does
    not fit the window, and the body length comes from ``get_record_batch_size``.

    Raises:
        ProtocolError: the prefix would not fit before ``SAMPLE_DATA_OFFSET``.
    """
    window = bytearray(SAMPLE_DATA_OFFSET - HEADER_SIZE)
    sink = pa.FixedSizeBufferWriter(pa.py_buffer(window))
    try:
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
    except (OSError, pa.ArrowInvalid):
        pass  # the body did not fit the window: expected, the prefix before it did
    schema_len = message_length(window, 0)
    batch_at = MESSAGE_HEAD.size + schema_len
    batch_len = message_length(window, batch_at) if schema_len > 0 else -1
    prefix_len = batch_at + MESSAGE_HEAD.size + batch_len
    if batch_len <= 0 or prefix_len > len(window) or prefix_len % 8:
        raise ProtocolError(f"Arrow IPC prefix of {batch.schema.types} does not fit {len(window)} bytes")
    body_length = pa.ipc.get_record_batch_size(batch) - MESSAGE_HEAD.size - batch_len
    return bytes(window[:prefix_len]), body_length


def write_stream(view: memoryview, batch: pa.RecordBatch, size: int) -> int | None:
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
