"""Data plane wire format: bytes <-> objects, nothing else (no sockets here).

A message on the data plane is a ZeroMQ multipart message of three frames::

    [topic, head, body]

``topic``  ``b"<node>/<output>\\0"``: NUL-terminated, because SUB filters are byte prefixes
           (``cam/image`` would otherwise also match ``cam/image2``).
``head``   a fixed struct (magic, version, kind, sequence number, send time in ns) followed by
           the message metadata as UTF-8 JSON (empty when there is none).
``body``   the value as an Arrow IPC stream holding one record batch with one column.

End of stream (the sender finished; ``EOS``) and failure (the sender crashed; ``FAILED``) are
sent in-band on each output's topic, so a receiver sees them after the last data message.
"""

from __future__ import annotations

from ._arrow import decode_value, encode_value, to_arrow, value_bytes
from ._frames import (
    HEAD_SIZE,
    MARKER_PREFIX,
    MessageKind,
    WireMessage,
    decode_frames,
    decode_topic,
    encode_control_frames,
    encode_data_frames,
    encode_release,
    encode_shm_frames,
    encode_topic,
    parse_release,
    marker_topic,
    parse_marker,
)
from ._metadata import OTEL_CONTEXT_KEY, decode_metadata, encode_metadata

__all__ = [
    "HEAD_SIZE",
    "MARKER_PREFIX",
    "OTEL_CONTEXT_KEY",
    "MessageKind",
    "WireMessage",
    "decode_frames",
    "decode_metadata",
    "decode_topic",
    "decode_value",
    "encode_control_frames",
    "encode_data_frames",
    "encode_release",
    "encode_shm_frames",
    "parse_release",
    "encode_metadata",
    "encode_topic",
    "encode_value",
    "marker_topic",
    "parse_marker",
    "to_arrow",
    "value_bytes",
]
