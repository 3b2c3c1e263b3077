"""Data-plane frames: round trips for every kind, and malformed frames rejected."""

from __future__ import annotations

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
    assert msg.kind is MessageKind.DATA and msg.seq == 7 and msg.topic == "cam/image"
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
