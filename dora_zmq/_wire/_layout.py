"""The Arrow layout dora_zmq relies on, defined once for the socket path and shared memory.

A value travels as a one-column record batch (column :data:`COLUMN`), either as Arrow IPC
messages (socket frames, shared-memory segments) or, when it is *flat*, as its bare values.
Flat means: a fixed-width type whose values are whole bytes (:func:`byte_width` > 0) and no
nulls, so the array is its type, its length and one buffer (:func:`flat_values`).

The IPC framing facts (continuation marker, message head, end-of-stream marker) live here
too: ``_guard`` walks them to refuse compressed bodies, ``_shm`` writes a stream's prefix and
end around data already in place and reads a stream's leading schema message by its length.
"""

from __future__ import annotations

import struct
from typing import Any

import pyarrow as pa

from .._cache import BoundedCache

__all__ = [
    "COLUMN",
    "CONTINUATION",
    "IPC_EOS",
    "MESSAGE_HEAD",
    "byte_width",
    "flat_values",
    "has_dictionary",
    "is_flat",
    "message_length",
]

#: The name of the one column of every batch, on the socket and in shared memory alike.
COLUMN = "value"
#: An encapsulated IPC message starts with this marker, then its metadata length (``<i``).
CONTINUATION = 0xFFFFFFFF
#: The head of an encapsulated IPC message: continuation marker and metadata length.
MESSAGE_HEAD = struct.Struct("<Ii")
#: The end-of-stream marker of an Arrow IPC stream (continuation marker, zero length).
IPC_EOS = MESSAGE_HEAD.pack(CONTINUATION, 0)


def byte_width(t: pa.DataType) -> int:
    """Bytes per value of a fixed-width type whose values are whole bytes, else 0.

    Booleans (bit-packed), dictionaries (indices plus a dictionary) and variable or nested
    types are 0. An extension type has the width of its storage (``pa.uuid()``: 16), since
    its array holds the storage's buffers.
    """
    while isinstance(t, pa.BaseExtensionType):
        t = t.storage_type
    if pa.types.is_dictionary(t):
        return 0
    try:
        bits = t.bit_width
    except ValueError:
        return 0
    return bits // 8 if bits % 8 == 0 else 0


def is_flat(value: pa.Array) -> bool:
    """Whether ``value`` is one buffer of whole-byte fixed-width values without nulls."""
    return value.null_count == 0 and byte_width(value.type) > 0


# type -> byte_width(type): computing it costs about 1 us, on every message sent; the lookup
# 0.05. Types are immutable; any sending thread may fill it (a store is atomic under the GIL).
_WIDTHS: BoundedCache[pa.DataType, int] = BoundedCache(256)


def _width_of(t: pa.DataType) -> int:
    try:
        width = _WIDTHS.get(t)
    except TypeError:  # an unhashable (extension) type: computed every time
        return byte_width(t)
    return width if width is not None else _WIDTHS.put(t, byte_width(t))


def flat_values(value: pa.Array) -> pa.Buffer | None:
    """The values of a flat array (see :func:`is_flat`) as one buffer, sliced to them; else None."""
    width = _width_of(value.type)
    if not width or value.null_count:
        return None
    data = value.buffers()[1]
    if data is None:
        return None
    start, nbytes = value.offset * width, len(value) * width
    return data if start == 0 and data.size == nbytes else data.slice(start, nbytes)


def has_dictionary(t: pa.DataType) -> bool:
    """Whether ``t`` is, or contains, a dictionary type (its stream has dictionary batches)."""
    if pa.types.is_dictionary(t):
        return True
    return any(has_dictionary(t.field(i).type) for i in range(t.num_fields))


def message_length(buf: Any, at: int = 0) -> int:
    """The metadata length of the continuation-framed IPC message at ``at`` in ``buf``.

    -1 when no such message starts there (too short, or no continuation marker); 0 at an
    end-of-stream marker. The message's metadata follows its head, its body the metadata.
    """
    size = buf.size if isinstance(buf, pa.Buffer) else len(buf)
    if at < 0 or at + MESSAGE_HEAD.size > size:
        return -1
    marker, length = MESSAGE_HEAD.unpack_from(buf, at)
    return int(length) if marker == CONTINUATION else -1
