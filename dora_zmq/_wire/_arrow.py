"""Arrow values <-> Arrow IPC bytes, and the conversions ``send_output`` accepts."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from .._errors import ProtocolError

__all__ = ["decode_value", "encode_value", "to_arrow", "value_bytes"]

_COLUMN = "value"
_EMPTY = pa.array([], type=pa.uint8())


def to_arrow(data: Any) -> pa.Array:
    """Turn what a user passes to ``send_output`` into a ``pyarrow.Array``.

    ``bytes``-like objects become a ``UInt8Array`` over the same memory (no copy); any
    ``pyarrow.Array`` passes through; a ``ChunkedArray`` is combined; a NumPy array is wrapped.

    Raises:
        TypeError: for anything else, naming the type received.
    """
    if isinstance(data, pa.Array):
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        buf = pa.py_buffer(data)
        return pa.Array.from_buffers(pa.uint8(), buf.size, [None, buf])
    if data is None:
        return _EMPTY
    if isinstance(data, pa.ChunkedArray):
        return data.combine_chunks()
    if type(data).__module__ == "numpy" and hasattr(data, "dtype"):
        return pa.array(data.ravel() if getattr(data, "ndim", 1) > 1 else data)
    raise TypeError(
        f"send_output data must be bytes or a pyarrow.Array (got {type(data).__name__}); "
        "wrap lists with pyarrow.array(...)"
    )


def encode_value(value: pa.Array) -> pa.Buffer:
    """Serialise one array as an Arrow IPC stream (schema + one record batch)."""
    batch = pa.RecordBatch.from_arrays([value], [_COLUMN])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue()


def decode_value(body: Any) -> pa.Array:
    """Read the array back from an IPC body without copying (the array aliases ``body``).

    Raises:
        ProtocolError: when the body is not an Arrow IPC stream with one one-column batch.
    """
    try:
        reader = pa.ipc.open_stream(pa.py_buffer(body))
        batch = reader.read_next_batch()
    except (pa.ArrowInvalid, StopIteration, OSError, ValueError) as exc:
        raise ProtocolError(f"body is not a valid Arrow IPC stream: {exc}") from exc
    if batch.num_columns != 1:
        raise ProtocolError(f"Arrow body has {batch.num_columns} columns, expected 1")
    return batch.column(0)


def value_bytes(value: pa.Array) -> bytes:
    """The ``data`` view of an event: the raw bytes of a fixed-width array's values.

    For variable-size or nested types there is no single value buffer, so the whole array is
    returned as Arrow IPC bytes (decodable with :func:`decode_value`).
    """
    if len(value) == 0:
        return b""
    t = value.type
    width = _byte_width(t)
    if width and value.null_count == 0:
        buf = value.buffers()[1]
        if buf is None:
            return b""
        start = value.offset * width
        return buf[start : start + len(value) * width].to_pybytes()
    return encode_value(value).to_pybytes()


def _byte_width(t: pa.DataType) -> int:
    """Bytes per value for fixed-width primitive types (0 for others and booleans)."""
    if pa.types.is_boolean(t) or not (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_temporal(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_decimal(t)
    ):
        return 0
    try:
        return t.bit_width // 8
    except ValueError:
        return 0
