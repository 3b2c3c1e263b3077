"""Arrow values <-> Arrow IPC bytes, and the conversions ``send_output`` accepts."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from .._cache import BoundedCache
from .._errors import ProtocolError
from ._guard import DECODE_ERRORS, checked, reject_compressed
from ._layout import COLUMN, byte_width, flat_values

__all__ = [
    "BatchDecoder",
    "decode_value",
    "encode_batch",
    "encode_value",
    "schema_bytes",
    "to_arrow",
    "value_bytes",
]

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
    batch = pa.RecordBatch.from_arrays([value], [COLUMN])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue()


#: How many schemas each cache keeps: far more distinct types than a dataflow uses; only a peer sending
#: pathological numbers of them reaches it, and the cache then starts afresh instead of growing for ever.
_SCHEMA_CACHE_LIMIT = 256

# type -> (one-column schema, its message bytes); None for a dictionary type (sent as a whole stream).
# Shared by every sending thread, without a lock: a put is a clear and a store, each atomic under the
# GIL, and an entry lost to a concurrent clear is only computed again.
_SCHEMAS: BoundedCache[pa.DataType, tuple[pa.Schema, bytes] | None] = BoundedCache(_SCHEMA_CACHE_LIMIT)


def encode_batch(value: pa.Array) -> tuple[bytes, pa.Buffer]:
    """``(schema message, record batch message)``: the cheap form of :func:`encode_value`.

    Writing and reading a bare record batch against a known schema costs a third of a full
    IPC stream; the schema message (a few hundred bytes, cached per type) still travels with
    every message, so a receiver never depends on having seen an earlier one. Dictionary
    arrays need the dictionary batch of a stream: they go as a full stream, schema ``b""``.
    """
    t = value.type
    try:
        cached = _SCHEMAS[t]
    except KeyError:
        cached = _schema_entry(t)
    if cached is None:
        return b"", encode_value(value)
    schema, raw = cached
    return raw, pa.RecordBatch.from_arrays([value], schema=schema).serialize()


def schema_bytes(t: pa.DataType) -> bytes:
    """The schema message of a one-column batch of type ``t`` (cached; not for dictionaries)."""
    try:
        cached = _SCHEMAS[t]
    except KeyError:
        cached = _schema_entry(t)
    if cached is None:
        raise ValueError(f"no bare schema for dictionary type {t}")
    return cached[1]


def _schema_entry(t: pa.DataType) -> tuple[pa.Schema, bytes] | None:
    entry = None
    if not pa.types.is_dictionary(t):
        schema = pa.schema([(COLUMN, t)])
        entry = (schema, schema.serialize().to_pybytes())
    return _SCHEMAS.put(t, entry)


class BatchDecoder:
    """Reads what :func:`encode_batch` wrote, caching schemas by their bytes."""

    def __init__(self) -> None:
        self._schemas: BoundedCache[bytes, pa.Schema] = BoundedCache(_SCHEMA_CACHE_LIMIT)
        # schema bytes -> (value type, bytes per value, alignment) of a flat body: reading the
        # type out of the schema and its width cost about 1.5 us a message, the lookup 0.05.
        self._flat: BoundedCache[bytes, tuple[pa.DataType, int, int]] = BoundedCache(_SCHEMA_CACHE_LIMIT)

    def decode(self, schema_raw: Any, body: Any) -> pa.Array:
        """The array (aliasing ``body``, no copy), validated (see ``_guard``).

        Raises:
            ProtocolError: the schema or batch message is not valid Arrow IPC, or the array's
                layout does not fit its buffers.
        """
        if not len(schema_raw):
            return decode_value(body)
        schema = self._schema(schema_raw)
        reject_compressed(body)
        try:
            value = pa.ipc.read_record_batch(pa.py_buffer(body), schema).column(0)
        except DECODE_ERRORS as exc:
            raise ProtocolError(f"body is not a valid Arrow record batch: {exc}") from exc
        return checked(value)

    def decode_flat(self, schema_raw: Any, body: Any) -> pa.Array:
        """The flat array whose values are ``body`` (see ``_layout.flat_values``), aliasing it.

        Raises:
            ProtocolError: the schema is not of a flat type, or ``body`` is not whole values.
        """
        key = schema_raw if type(schema_raw) is bytes else bytes(schema_raw)
        entry = self._flat.get(key)
        if entry is None:
            t = self._schema(key).field(0).type
            width = byte_width(t)
            entry = self._flat.put(key, (t, width, min(width, 8))) if width else (t, 0, 1)
        t, width, align = entry
        buf = pa.py_buffer(body)
        if not width or buf.size % width:
            raise ProtocolError(f"a flat body of {buf.size} bytes cannot hold values of type {t}")
        if buf.address % align:  # a tiny frame stored inside ZeroMQ's message: realign
            buf = pa.py_buffer(buf.to_pybytes())
        return pa.Array.from_buffers(t, buf.size // width, [None, buf], null_count=0)

    def _schema(self, schema_raw: Any) -> pa.Schema:
        key = bytes(schema_raw)
        schema = self._schemas.get(key)
        if schema is not None:
            return schema
        try:
            schema = pa.ipc.read_schema(pa.py_buffer(key))
        except DECODE_ERRORS as exc:
            raise ProtocolError(f"schema frame is not a valid Arrow schema: {exc}") from exc
        if len(schema) != 1:
            raise ProtocolError(f"Arrow schema has {len(schema)} fields, expected 1")
        return self._schemas.put(key, schema)


def decode_value(body: Any) -> pa.Array:
    """Read the array back from an IPC body without copying (the array aliases ``body``).

    The array is validated (see ``_guard``): the body may come from anyone.

    Raises:
        ProtocolError: when the body is not an Arrow IPC stream with one one-column batch
            whose layout fits its buffers.
    """
    reject_compressed(body)
    try:
        reader = pa.ipc.open_stream(pa.py_buffer(body))
        batch = reader.read_next_batch()
    except DECODE_ERRORS as exc:
        raise ProtocolError(f"body is not a valid Arrow IPC stream: {exc or type(exc).__name__}") from exc
    if batch.num_columns != 1:
        raise ProtocolError(f"Arrow body has {batch.num_columns} columns, expected 1")
    return checked(batch.column(0))


def value_bytes(value: pa.Array) -> bytes:
    """The ``data`` view of an event: the raw bytes of a fixed-width array's values.

    For variable-size or nested types there is no single value buffer, so the whole array is
    returned as Arrow IPC bytes (decodable with :func:`decode_value`).
    """
    if len(value) == 0:
        return b""
    data = flat_values(value)
    raw: bytes = (data if data is not None else encode_value(value)).to_pybytes()
    return raw
