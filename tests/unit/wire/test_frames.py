"""Data-plane frames: round trips for every kind, and malformed frames rejected."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dora_zmq._errors import ProtocolError
from dora_zmq._wire import (
    MessageKind,
    decode_frames,
    encode_control_frames,
    encode_data_frames,
    encode_release,
    encode_shm_frames,
    encode_topic,
    marker_topic,
    parse_marker,
    parse_release,
    to_arrow,
    value_bytes,
)

TOPIC = encode_topic("cam", "image")


@pytest.mark.parametrize(
    "value",
    [
        pa.array([1, 2, 3], type=pa.int16()),
        pa.array([1.5, None]),
        pa.array(["a", None, "ccc"]),
        pa.array([[1], [], None]),
        pa.array([{"x": 1}, {"x": None}]),
        pa.array(["a", "b", "a"]).dictionary_encode(),
        pa.array([], type=pa.float32()),
        to_arrow(b"bytes"),
    ],
)
def test_data_round_trip(value: pa.Array) -> None:
    frames = encode_data_frames(TOPIC, 7, value, {"k": [1, "x"]})
    msg = decode_frames([bytes(f) if not isinstance(f, pa.Buffer) else f.to_pybytes() for f in frames])
    flat = pa.types.is_integer(value.type) or pa.types.is_floating(value.type) and not value.null_count
    assert msg.kind is (MessageKind.FLAT if flat else MessageKind.DATA)
    assert msg.seq == 7 and msg.topic == "cam/image"
    assert msg.metadata == {"k": [1, "x"]}
    assert msg.value.equals(value)


def test_eos_failed_and_shm_kinds() -> None:
    assert decode_frames(encode_control_frames(TOPIC, MessageKind.EOS, 3)).kind is MessageKind.EOS
    failed = decode_frames(encode_control_frames(TOPIC, MessageKind.FAILED, 3, {"error": "x"}))
    assert failed.kind is MessageKind.FAILED and failed.metadata["error"] == "x"
    shm = decode_frames(encode_shm_frames(TOPIC, 4, b"descriptor", None))
    assert shm.kind is MessageKind.SHM and shm.shm == b"descriptor" and shm.value is None


@pytest.mark.parametrize(
    "frames",
    [
        [TOPIC],
        [b"no-nul", b"h" * 20, b"", b""],
        [TOPIC, b"short", b"", b""],
        [TOPIC, b"XX" + b"\0" * 18, b"", b""],
        [TOPIC, encode_control_frames(TOPIC, MessageKind.EOS, 1)[1][:2] + b"\x09" + b"\0" * 17, b"", b""],
        [TOPIC, encode_data_frames(TOPIC, 1, to_arrow(b"x"), None)[1] + b"{not json", b"", b""],
        [TOPIC, encode_data_frames(TOPIC, 1, to_arrow(b"x"), None)[1], b"garbage", b"garbage"],
    ],
)
def test_malformed_frames_raise_protocol_error(frames: list[bytes]) -> None:
    with pytest.raises(ProtocolError):
        decode_frames(frames)


def test_markers_and_releases() -> None:
    assert parse_marker(b"\x01" + marker_topic("n1")) == (True, "n1")
    assert parse_marker(b"\x00" + marker_topic("n1")) == (False, "n1")
    assert parse_marker(b"\x01" + TOPIC) is None
    assert parse_release(encode_release("dst", b"\x01desc")) == ("dst", b"\x01desc")
    assert parse_release(b"\x01" + TOPIC) is None


def test_value_bytes() -> None:
    assert value_bytes(pa.array([1, 2], type=pa.int16())) == b"\x01\x00\x02\x00"
    assert value_bytes(pa.array([1, 2, 3], type=pa.uint8()).slice(1)) == b"\x02\x03"
    assert value_bytes(pa.array([], type=pa.int8())) == b""
    with pytest.raises(TypeError):
        to_arrow([1, 2])


@pytest.mark.parametrize(
    "value",
    [
        pa.array(np.arange(10, dtype=np.int64)).slice(3, 4),  # an offset into a larger buffer
        pa.array([1, None, 3]).slice(2),  # a validity buffer, no null in the slice
        pa.array(np.arange(5).astype("datetime64[us]")),
        pa.array([b"abcd", b"efgh"], pa.binary(4)),
        pa.array([1, 2], pa.decimal128(10, 2)),
        pa.array(np.linspace(0, 1, 1001, dtype=np.float32)),
    ],
    ids=["slice", "validity", "timestamp", "fixed-binary", "decimal", "float32"],
)
def test_flat_values_travel_as_their_bytes(value: pa.Array) -> None:
    frames = encode_data_frames(TOPIC, 1, value, None)
    width = value.type.bit_width // 8
    assert (
        bytes(frames[3]) == value.buffers()[1].to_pybytes()[value.offset * width : (value.offset + len(value)) * width]
    )
    msg = decode_frames([bytes(f) for f in frames])
    assert msg.kind is MessageKind.FLAT and msg.value.equals(value) and msg.value.type == value.type


def test_a_misaligned_flat_body_is_realigned() -> None:
    value = pa.array([1, 2, 3], pa.int64())
    topic, head, schema, _ = encode_data_frames(TOPIC, 1, value, None)
    raw = bytearray(b"x" + value.buffers()[1].to_pybytes())
    body = memoryview(raw)[1:]  # one byte off the allocation's alignment
    got = decode_frames([topic, head, schema, body]).value
    assert got.equals(value) and got.buffers()[1].address % 8 == 0


def test_a_flat_body_that_is_not_whole_values_is_refused() -> None:
    topic, head, schema, body = encode_data_frames(TOPIC, 1, pa.array([1, 2], pa.int32()), None)
    with pytest.raises(ProtocolError, match="cannot hold values"):
        decode_frames([topic, head, schema, bytes(body)[:-1]])
    _, _, text_schema, _ = encode_data_frames(TOPIC, 1, pa.array(["a"]), None)
    with pytest.raises(ProtocolError, match="cannot hold values"):
        decode_frames([topic, head, text_schema, bytes(body)])  # a flat body, a non-flat type
