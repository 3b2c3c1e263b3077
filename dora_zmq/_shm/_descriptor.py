"""The descriptor that travels over the socket instead of the data: where the data is.

Encoded as a fixed little-endian struct followed by the segment name::

    magic "DZSM" | version u8 | name length u8 | reserved u16 (0)
    | offset u64 | length u64 | token u64 | writer pid u32 | name (ASCII)

Decoding is strict (exact length, known version, a name that cannot escape the segment
directory) because the bytes come from the network and the name is joined to a path.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from .._errors import ProtocolError
from ._naming import is_segment_name

__all__ = ["DESCRIPTOR_VERSION", "ShmDescriptor"]

_MAGIC = b"DZSM"
DESCRIPTOR_VERSION = 1
_FIXED = struct.Struct("<4sBBHQQQI")
_U64 = (1 << 64) - 1
_U32 = (1 << 32) - 1


@dataclass(frozen=True, slots=True)
class ShmDescriptor:
    """Where one message's Arrow IPC stream lies in shared memory.

    Attributes:
        segment: the segment's file name (no directory).
        offset: byte offset of the IPC stream in the segment.
        length: byte length of the IPC stream.
        token: the writer's id for this message; the reader hands it back on release.
        pid: the writer's process id (also checked against the segment header).
    """

    segment: str
    offset: int
    length: int
    token: int
    pid: int

    def encode(self) -> bytes:
        """The wire form (about 80 bytes).

        Raises:
            ValueError: when a field is out of range or the name is not a segment name.
        """
        name = self.segment.encode("ascii", "strict") if self.segment.isascii() else b""
        if not name or not is_segment_name(self.segment):
            raise ValueError(f"not a segment name: {self.segment!r}")
        for field, value, top in (
            ("offset", self.offset, _U64),
            ("length", self.length, _U64),
            ("token", self.token, _U64),
            ("pid", self.pid, _U32),
        ):
            if not isinstance(value, int) or not 0 <= value <= top:
                raise ValueError(f"descriptor {field} out of range: {value!r}")
        return (
            _FIXED.pack(
                _MAGIC,
                DESCRIPTOR_VERSION,
                len(name),
                0,
                self.offset,
                self.length,
                self.token,
                self.pid,
            )
            + name
        )

    @classmethod
    def decode(cls, raw: Any) -> ShmDescriptor:
        """Parse :meth:`encode`'s output (``bytes``, ``memoryview`` or any buffer).

        Raises:
            ProtocolError: for anything but a well-formed descriptor of this version.
        """
        try:
            data = bytes(raw)
        except TypeError as exc:
            raise ProtocolError(f"shm descriptor must be bytes, got {type(raw).__name__}") from exc
        if len(data) < _FIXED.size:
            raise ProtocolError(f"shm descriptor too short ({len(data)} bytes)")
        magic, version, name_len, reserved, offset, length, token, pid = _FIXED.unpack_from(data)
        if magic != _MAGIC:
            raise ProtocolError("bad magic in shm descriptor")
        if version != DESCRIPTOR_VERSION:
            raise ProtocolError(
                f"shm descriptor version {version} not supported (this side speaks {DESCRIPTOR_VERSION})"
            )
        if reserved != 0:
            raise ProtocolError("shm descriptor reserved field is not zero")
        if len(data) != _FIXED.size + name_len:
            raise ProtocolError(f"shm descriptor length {len(data)} does not match its name length {name_len}")
        try:
            name = data[_FIXED.size :].decode("ascii")
        except UnicodeDecodeError as exc:
            raise ProtocolError("shm descriptor segment name is not ASCII") from exc
        if not is_segment_name(name):
            raise ProtocolError(f"shm descriptor names no segment: {name!r}")
        return cls(name, offset, length, token, pid)

    @classmethod
    def decode_all(cls, raw: Any) -> list[ShmDescriptor]:
        """Parse several :meth:`encode` outputs laid end to end (a batch of releases).

        Raises:
            ProtocolError: when any part is not a well-formed descriptor (none is returned).
        """
        data = bytes(raw)
        out = []
        at = 0
        while at < len(data):
            if len(data) - at < _FIXED.size:
                raise ProtocolError(f"shm descriptor too short ({len(data) - at} bytes)")
            end = at + _FIXED.size + data[at + 5]  # the name length byte
            out.append(cls.decode(data[at:end]))
            at = end
        if not out:
            raise ProtocolError("no shm descriptor")
        return out
