"""Frame layout of a data-plane message: topic, head (struct + metadata), schema, body."""

from __future__ import annotations

import enum
import struct
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pyarrow as pa

from ._guard import DECODE_ERRORS
from .._errors import ProtocolError
from ._arrow import BatchDecoder, encode_batch, schema_bytes
from ._layout import flat_values
from ._metadata import decode_metadata, encode_metadata

__all__ = [
    "HEAD_SIZE",
    "MARKER_PREFIX",
    "MessageKind",
    "WireMessage",
    "decode_frames",
    "decode_topic",
    "encode_control_frames",
    "encode_data_frames",
    "encode_release",
    "encode_shm_frames",
    "encode_topic",
    "parse_release",
    "RELEASE_PREFIX",
    "marker_topic",
    "parse_marker",
    "UnreadableValue",
]

_MAGIC = b"DZ"
WIRE_VERSION = 2
# magic(2) version(1) kind(1) seq(8) sent_ns(8): wall-clock send time (ns since the epoch), the
# receiver's metadata["timestamp"] as dora's Python API gives it
_HEAD = struct.Struct("<2sBBQQ")
HEAD_SIZE = _HEAD.size
_pack = _HEAD.pack
_unpack_from = _HEAD.unpack_from
# The send time is the sender's wall clock (ns since the epoch), not a monotonic clock: a
# recording keeps it, and messages from several machines must be ordered on one time line
# (as ROS stamps are; as good as the machines' clock synchronisation).
_clock_ns = time.time_ns

#: Subscription "topics" that start with NUL never match data (data topics start with a node
#: id); a subscriber sends ``MARKER_PREFIX + node_id`` after its real subscriptions so that a
#: publisher knows that subscriber is fully attached (the start barrier).
MARKER_PREFIX = b"\x00sub:"
#: Upstream messages (subscriber -> publisher) that are not subscriptions start with 0x02.
RELEASE_PREFIX = b"\x02rel:"


class MessageKind(enum.IntEnum):
    """What a data-plane message carries."""

    DATA = 0
    EOS = 1  # the sender finished this output; nothing follows
    FAILED = 2  # the sender crashed; metadata carries {"error": text}
    SHM = 3  # the value is in a shared-memory segment; the body is its descriptor
    FLAT = 4  # a flat array (fixed width, no nulls): the body is its values, nothing else


# Plain ints and a tuple lookup: calling an IntEnum costs a microsecond per message.
_DATA = int(MessageKind.DATA)
_FLAT = int(MessageKind.FLAT)
_KINDS = tuple(MessageKind)
# What makes a message whose head was read unreadable (its metadata or value was not).
_VALUE_ERRORS: tuple[type[BaseException], ...] = (ProtocolError, *DECODE_ERRORS)


class UnreadableValue(ProtocolError):
    """The head of a message was valid but its metadata or value was not.

    ``seq`` is the sender's sequence number from the head, so that a receiver counts the
    message as dropped (malformed) and not also as lost in transit.
    """

    def __init__(self, message: str, seq: int) -> None:
        super().__init__(message)
        self.seq = seq


@dataclass(frozen=True, slots=True)
class WireMessage:
    """A decoded data-plane message."""

    topic: str
    kind: MessageKind
    seq: int
    sent_ns: int  # the sender's wall clock, ns since the epoch
    metadata: dict[str, Any]
    value: pa.Array | None
    shm: bytes | None = None  # the encoded segment descriptor of a SHM message


def encode_topic(node: str, output: str) -> bytes:
    """``b"node/output\\0"``."""
    return f"{node}/{output}".encode() + b"\0"


def decode_topic(raw: bytes) -> str:
    """Inverse of :func:`encode_topic`."""
    if not raw.endswith(b"\0"):
        raise ProtocolError("topic frame is not NUL-terminated")
    return raw[:-1].decode("utf-8", errors="replace")


def marker_topic(node: str) -> bytes:
    """The barrier marker a subscriber node subscribes to after its real topics."""
    return MARKER_PREFIX + node.encode()


def parse_marker(subscription: bytes) -> tuple[bool, str] | None:
    """Parse an XPUB subscription message: ``(subscribed, node)`` for markers, else ``None``."""
    if len(subscription) < 1 + len(MARKER_PREFIX) or subscription[1:].find(MARKER_PREFIX) != 0:
        return None
    return subscription[0] == 1, subscription[1 + len(MARKER_PREFIX) :].decode(errors="replace")


def encode_data_frames(topic: bytes, seq: int, value: pa.Array, metadata: Mapping[str, Any] | None) -> list[Any]:
    """Frames for one data message (the body is a ``pyarrow.Buffer``, sendable without copy).

    A flat value (see ``_layout``) travels as its bare values buffer: no IPC message to write
    and parse, a few microseconds each way per message; the receiver rebuilds the array
    around the received frame (:meth:`BatchDecoder.decode_flat`).
    """
    data = flat_values(value)
    if data is not None:
        head = _pack(_MAGIC, WIRE_VERSION, _FLAT, seq, _clock_ns())
        return [topic, head + encode_metadata(metadata) if metadata else head, schema_bytes(value.type), data]
    head = _pack(_MAGIC, WIRE_VERSION, _DATA, seq, _clock_ns())
    schema, batch = encode_batch(value)
    return [topic, head + encode_metadata(metadata) if metadata else head, schema, batch]


def encode_shm_frames(topic: bytes, seq: int, descriptor: bytes, metadata: Mapping[str, Any] | None) -> list[Any]:
    """Frames for a message whose value lies in shared memory (``descriptor`` locates it)."""
    head = _HEAD.pack(_MAGIC, WIRE_VERSION, MessageKind.SHM, seq, _clock_ns())
    return [topic, head + encode_metadata(metadata), b"", descriptor]


def encode_release(reader: str, descriptors: bytes) -> bytes:
    """What a receiver sends upstream once it dropped shared-memory values.

    ``descriptors``: one or more encoded descriptors, end to end (they are self-delimiting).
    """
    return RELEASE_PREFIX + reader.encode() + b"\0" + descriptors


def parse_release(message: bytes) -> tuple[str, bytes] | None:
    """``(reader, descriptors)`` of a release message, None for anything else."""
    if not message.startswith(RELEASE_PREFIX):
        return None
    reader, sep, descriptor = message[len(RELEASE_PREFIX) :].partition(b"\0")
    return (reader.decode(errors="replace"), descriptor) if sep else None


def encode_control_frames(
    topic: bytes, kind: MessageKind, seq: int, metadata: Mapping[str, Any] | None = None
) -> list[bytes]:
    """Frames for an in-band EOS / FAILED message (no body)."""
    head = _HEAD.pack(_MAGIC, WIRE_VERSION, kind, seq, _clock_ns())
    return [topic, head + encode_metadata(metadata), b"", b""]


_DEFAULT_DECODER = BatchDecoder()


def decode_frames(frames: Sequence[Any], decoder: BatchDecoder = _DEFAULT_DECODER) -> WireMessage:
    """Decode ``[topic, head, schema, body]`` (bytes, or ZeroMQ frames: ``.bytes``/``.buffer``).

    The value aliases the body frame (no copy). A value read from an Arrow IPC message is
    validated against its buffers first (a flat one is rebuilt from the body's size).

    Raises:
        ProtocolError: for anything malformed, and nothing else; the caller counts and drops
            the message.
    """
    try:
        if len(frames) != 4:
            raise ProtocolError(f"expected 4 frames, got {len(frames)}")
        topic_raw, head_raw, schema, body = frames
        topic_raw, head_raw, schema = _bytes(topic_raw), _bytes(head_raw), _bytes(schema)
        topic = decode_topic(topic_raw)
        if len(head_raw) < HEAD_SIZE:
            raise ProtocolError(f"head frame too short ({len(head_raw)} bytes)")
        magic, version, kind, seq, sent_ns = _unpack_from(head_raw)
        if magic != _MAGIC:
            raise ProtocolError("bad magic in head frame")
        if version != WIRE_VERSION:
            raise ProtocolError(f"wire version {version} not supported (this side speaks {WIRE_VERSION})")
        if kind >= len(_KINDS):
            raise ProtocolError(f"unknown message kind {kind}")
        mkind = _KINDS[kind]
    except DECODE_ERRORS as exc:  # a net under the decoders above: nothing else escapes
        raise ProtocolError(f"undecodable message: {type(exc).__name__}: {exc}") from exc
    try:
        metadata = decode_metadata(head_raw[HEAD_SIZE:]) if len(head_raw) > HEAD_SIZE else {}
        if kind == _FLAT:
            return WireMessage(topic, mkind, seq, sent_ns, metadata, decoder.decode_flat(schema, _buffer(body)))
        if kind == _DATA:
            return WireMessage(topic, mkind, seq, sent_ns, metadata, decoder.decode(schema, _buffer(body)))
        shm = _bytes(body) if mkind is MessageKind.SHM else None
        return WireMessage(topic, mkind, seq, sent_ns, metadata, None, shm)
    except _VALUE_ERRORS as exc:
        raise UnreadableValue(str(exc) or type(exc).__name__, seq) from exc


def _bytes(frame: Any) -> bytes:
    if type(frame) is bytes:
        return frame
    raw = getattr(frame, "bytes", None)  # a ZeroMQ frame
    return raw if isinstance(raw, bytes) else bytes(frame)


def _buffer(frame: Any) -> Any:
    buffer = getattr(frame, "buffer", None)  # a ZeroMQ frame's memory, without a copy
    return buffer if buffer is not None else frame
