"""ShmDescriptor: wire round trip, and strict rejection of anything malformed."""

from __future__ import annotations

import dataclasses
import struct

import pytest

from dora_zmq._errors import ProtocolError
from dora_zmq._shm import ShmDescriptor, segment_name

NAME = segment_name("3f2a9c1e-aaaa-bbbb", "camera-left", 4242, 7)
DESC = ShmDescriptor(NAME, 64, 16 * 1024 * 1024, (1 << 63) + 5, 4242)


def test_round_trip_is_small() -> None:
    raw = DESC.encode()
    assert ShmDescriptor.decode(raw) == DESC
    assert ShmDescriptor.decode(memoryview(raw)) == DESC
    assert ShmDescriptor.decode(bytearray(raw)) == DESC
    assert len(raw) < 100


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DESC.token = 1  # type: ignore[misc]


def _patch(raw: bytes, offset: int, fmt: str, value: int) -> bytes:
    buf = bytearray(raw)
    struct.pack_into(fmt, buf, offset, value)
    return bytes(buf)


RAW = DESC.encode()


def _with_name(name: bytes) -> bytes:
    """RAW with another name (and a matching name length)."""
    fixed = RAW[: len(RAW) - len(NAME)]
    return _patch(fixed, 5, "<B", len(name)) + name


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        RAW[:10],
        RAW[:-1],  # name truncated
        RAW + b"x",  # trailing garbage
        b"XXXX" + RAW[4:],  # magic
        _patch(RAW, 4, "<B", 2),  # version from the future
        _patch(RAW, 4, "<B", 0),
        _patch(RAW, 6, "<H", 1),  # reserved
        _with_name(b""),
        _with_name(b"../../etc/passwd"),
        _with_name(b"dora-zmq-x/y-1-1-1"),
        _with_name(b"dora-zmq-../../x-1-1"),
        _with_name(b"dora-zmq-ab-n-1-1\x00"),
        _with_name(NAME[:-1].encode() + b"\xff"),  # not ASCII
        _with_name(b"shm-other-program"),
        _with_name(b"dora-zmq-ab-n-" + b"9" * 20 + b"-1"),  # pid out of range
    ],
)
def test_malformed_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        ShmDescriptor.decode(raw)


def test_non_buffer_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        ShmDescriptor.decode(12345)  # type: ignore[arg-type]
    with pytest.raises(ProtocolError):
        ShmDescriptor.decode(None)


@pytest.mark.parametrize(
    "desc",
    [
        dataclasses.replace(DESC, offset=-1),
        dataclasses.replace(DESC, length=1 << 64),
        dataclasses.replace(DESC, token=-3),
        dataclasses.replace(DESC, pid=1 << 32),
        dataclasses.replace(DESC, segment="../etc/passwd"),
        dataclasses.replace(DESC, segment="dora-zmq-é-a-1-1"),
        dataclasses.replace(DESC, segment=""),
    ],
)
def test_encode_rejects_bad_fields(desc: ShmDescriptor) -> None:
    with pytest.raises(ValueError):
        desc.encode()
