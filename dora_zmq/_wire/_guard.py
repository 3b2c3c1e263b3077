"""Arrow data from a peer is untrusted: what a decoder may raise, and the check before use.

An Arrow IPC message describes its buffers (offsets, lengths, child lengths, validity
bitmaps) and the IPC reader believes it: a string array whose offsets say ``[0, 2000000000,
16]`` is read without complaint, and reading its second value then touches memory two
gigabytes past the frame (a segfault, or a neighbour's heap). A sender does not even need
to forge bytes: ``pyarrow.Array.from_buffers`` builds such arrays and does not check them.
So every value that the IPC reader rebuilt from peer-supplied layout is validated before an
application sees it (:func:`checked`), on the socket path (``_wire``) and the shared-memory
path (``_shm``) alike.

What it costs: ``validate()`` checks buffer sizes against lengths, constant time;
``validate(full=True)`` also walks offsets, dictionary indices and null counts, linear in the
value (about 2.5 ns a string here; the benchmark reports it per message). Flat values (fixed
width, no nulls) sent as bare bytes are rebuilt by the receiver from the frame's own size and
need neither; a flat value read from an IPC stream (shared memory) needs only the cheap one.

Compressed IPC bodies are refused before Arrow reads them (:func:`reject_compressed`): the
reader allocates the uncompressed size that each buffer claims and inflates into it, so a few
KiB of zstd could cost a receiver gigabytes per message. dora_zmq senders never compress.

Decoders translate :data:`DECODE_ERRORS` into ``ProtocolError`` (a documented promise of
``decode_frames``, ``ShmDescriptor.decode`` and ``SegmentReader.open``): besides the Arrow
errors, crafted input reaches ``EOFError`` and ``NotImplementedError`` (unknown types) in
pyarrow, ``ValueError`` (4,300-digit integers) and ``RecursionError`` (deep nesting) in json.
"""

from __future__ import annotations

import struct
from typing import Any

import pyarrow as pa

from .._errors import ProtocolError
from ._layout import CONTINUATION, MESSAGE_HEAD

__all__ = ["DECODE_ERRORS", "checked", "reject_compressed"]

#: Everything a decoder of untrusted bytes may raise besides ``ProtocolError``. Not
#: ``MemoryError`` (the reads alias their input and allocate nothing proportional to a claimed
#: size) nor ``KeyboardInterrupt``.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    pa.ArrowException,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    OverflowError,
    EOFError,
    OSError,
    NotImplementedError,
    RecursionError,
    StopIteration,
    struct.error,
)


def checked(value: pa.Array, *, flat: bool = False) -> pa.Array:
    """``value`` once its layout is proven consistent with its buffers.

    Args:
        value: an array rebuilt from a peer's IPC description.
        flat: the value is of a fixed-width type without nulls: only buffer sizes can lie,
            which the cheap structural check covers.

    Raises:
        ProtocolError: the array's buffers do not hold what its layout claims.
    """
    try:
        if flat:
            value.validate()
        else:
            value.validate(full=True)
    except DECODE_ERRORS as exc:
        raise ProtocolError(f"invalid Arrow {value.type} array: {exc}") from exc
    return value


_unpack_head = MESSAGE_HEAD.unpack_from
_unpack_i32 = struct.Struct("<i").unpack_from
_unpack_u32 = struct.Struct("<I").unpack_from
_unpack_u16 = struct.Struct("<H").unpack_from
_unpack_i64 = struct.Struct("<q").unpack_from
# Arrow's Message.fbs: the MessageHeader union's batch kinds, RecordBatch.compression's index.
_DICTIONARY_BATCH, _RECORD_BATCH = 2, 3
_RECORD_BATCH_COMPRESSION = 3


def reject_compressed(ipc: Any) -> None:
    """Refuse an IPC message or stream any of whose batches is compressed.

    Walks the encapsulated messages (continuation marker, metadata length, flatbuffer, body)
    reading only the few flatbuffer fields that say where the next message starts and whether
    a record or dictionary batch names a compression codec: about a dozen ``unpack_from`` per
    message, whatever the body's size.

    Raises:
        ProtocolError: a batch is compressed, or the message framing is out of bounds.
    """
    end = ipc.size if isinstance(ipc, pa.Buffer) else len(ipc)
    at = 0
    try:
        while at + 8 <= end:
            marker, size = _unpack_head(ipc, at)
            start = at + 8
            if marker != CONTINUATION:  # the pre-1.0 framing: no marker, the length first
                size, start = _unpack_i32(ipc, at)[0], at + 4
            if size == 0:
                return  # end of stream
            if size < 0 or start + size > end:
                raise ProtocolError(f"IPC message metadata of {size} bytes overruns its frame")
            body = _batch_body(ipc, start, start + size)
            if body < 0:
                raise ProtocolError("compressed Arrow IPC bodies are not accepted")
            at = start + size + body
    except struct.error as exc:
        raise ProtocolError(f"malformed Arrow IPC message metadata: {exc}") from exc


def _batch_body(buf: Any, base: int, end: int) -> int:
    """The body length of the message whose flatbuffer spans ``buf[base:end]``; -1 for a
    compressed record or dictionary batch.

    Positions are checked against ``[base, end)`` (``unpack_from`` alone would read past the
    flatbuffer into the body, or count a negative offset from the end of the frame); one that
    falls outside raises ``struct.error``, as a short buffer would. What this finds malformed,
    Arrow's flatbuffer verifier refuses too.
    """
    u32, i32, u16 = _unpack_u32, _unpack_i32, _unpack_u16
    root = base + u32(buf, base)[0]
    if root + 4 > end:
        raise struct.error("root table out of bounds")
    vt = root - i32(buf, root)[0]
    if not base <= vt <= end - 4:
        raise struct.error("vtable out of bounds")
    vt_size = u16(buf, vt)[0]
    if vt + vt_size > end:
        raise struct.error("vtable out of bounds")
    # Message: version (0), header_type (1), header (2), bodyLength (3)
    kind_off = u16(buf, vt + 6)[0] if vt_size >= 8 else 0
    header_off = u16(buf, vt + 8)[0] if vt_size >= 10 else 0
    length_off = u16(buf, vt + 10)[0] if vt_size >= 12 else 0
    body = 0
    if length_off:
        if root + length_off + 8 > end:
            raise struct.error("body length out of bounds")
        body = _unpack_i64(buf, root + length_off)[0]
        if body < 0:
            raise struct.error(f"negative body length {body}")
    if not kind_off or not header_off or root + max(kind_off, header_off + 4) > end:
        return int(body)
    kind = buf[root + kind_off]
    table = root + header_off + u32(buf, root + header_off)[0]
    if kind == _DICTIONARY_BATCH:  # its field 1 (data) is the record batch
        table = _table_field(buf, table, 1, end)
        if table < 0:
            return int(body)
    elif kind != _RECORD_BATCH:
        return int(body)
    return -1 if _table_field(buf, table, _RECORD_BATCH_COMPRESSION, end) >= 0 else int(body)


def _table_field(buf: Any, table: int, index: int, end: int) -> int:
    """Where the offset-typed field ``index`` of ``table`` points; -1 when absent."""
    if table + 4 > end:
        raise struct.error("table out of bounds")
    vt = table - _unpack_i32(buf, table)[0]
    if vt < 0 or vt + 4 > end:
        raise struct.error("vtable out of bounds")
    entry = 4 + 2 * index
    if entry + 2 > _unpack_u16(buf, vt)[0] or vt + entry + 2 > end:
        return -1
    offset = _unpack_u16(buf, vt + entry)[0]
    if not offset:
        return -1
    at = table + offset
    if at + 4 > end:
        raise struct.error("field out of bounds")
    target: int = at + _unpack_u32(buf, at)[0]
    return target
