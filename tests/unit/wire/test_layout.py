"""The Arrow layout, defined once in ``_wire._layout`` for the socket path and shared memory.

``pa.uuid()`` (an extension type over ``fixed_size_binary(16)``) was 0 bytes wide in the
socket path's ``byte_width`` and 16 in shared memory's: its values went flat through shared
memory but as a whole IPC message over the socket, and ``Event.data`` was IPC bytes instead
of the 16-byte values.
"""

from __future__ import annotations

import uuid

import pyarrow as pa
import pytest

from dora_zmq._wire import (
    IPC_EOS,
    MessageKind,
    byte_width,
    decode_frames,
    encode_data_frames,
    encode_topic,
    encode_value,
    flat_values,
    is_flat,
    message_length,
    value_bytes,
)

UUIDS = [uuid.UUID(int=i * 0x0101010101010101).bytes for i in range(1, 4)]


def _uuid_array() -> pa.Array:
    return pa.ExtensionArray.from_storage(pa.uuid(), pa.array(UUIDS, pa.binary(16)))


@pytest.mark.parametrize(
    ("t", "width"),
    [
        (pa.uint8(), 1),
        (pa.float16(), 2),
        (pa.int64(), 8),
        (pa.timestamp("ns"), 8),
        (pa.decimal128(10, 2), 16),
        (pa.binary(3), 3),
        (pa.month_day_nano_interval(), 16),
        (pa.uuid(), 16),  # extension types have their storage's width
        (pa.bool8(), 1),
        (pa.bool_(), 0),  # bit-packed
        (pa.null(), 0),
        (pa.string(), 0),
        (pa.list_(pa.int8(), 2), 0),
        (pa.dictionary(pa.int32(), pa.string()), 0),
        (pa.fixed_shape_tensor(pa.int8(), [2]), 0),  # storage is a fixed-size list: nested
    ],
    ids=str,
)
def test_byte_width(t: pa.DataType, width: int) -> None:
    assert byte_width(t) == width


def test_uuid_travels_flat_over_the_socket_and_reads_back_equal() -> None:
    value = _uuid_array()
    frames = encode_data_frames(encode_topic("n", "o"), 1, value, None)
    msg = decode_frames([f.to_pybytes() if isinstance(f, pa.Buffer) else bytes(f) for f in frames])
    assert msg.kind is MessageKind.FLAT
    assert msg.value is not None and msg.value.type == pa.uuid() and msg.value.equals(value)


def test_uuid_event_data_is_its_values() -> None:
    assert value_bytes(_uuid_array()) == b"".join(UUIDS)


def test_flat_values_slices_and_refuses_nulls() -> None:
    value = pa.array(range(10), pa.int32()).slice(3, 4)
    data = flat_values(value)
    assert data is not None and data.to_pybytes() == pa.array([3, 4, 5, 6], pa.int32()).buffers()[1].to_pybytes()
    with_null = pa.array([1, None], pa.int32())
    assert flat_values(with_null) is None and not is_flat(with_null)
    assert flat_values(pa.array(["a"])) is None and not is_flat(pa.array(["a"]))
    assert is_flat(value)


def test_message_length_reads_the_ipc_framing() -> None:
    stream = encode_value(pa.array([1, 2], pa.int8()))
    schema_len = message_length(stream, 0)
    assert schema_len > 0
    assert stream.to_pybytes().endswith(IPC_EOS)
    assert message_length(stream, stream.size - len(IPC_EOS)) == 0
    assert message_length(b"\x00" * 8) == -1  # no continuation marker
    assert message_length(stream, stream.size - 4) == -1  # too short for a head
