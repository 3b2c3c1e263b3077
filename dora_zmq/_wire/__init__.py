"""Data plane wire format: bytes <-> objects, nothing else (no sockets here).

A message on the data plane is a ZeroMQ multipart message of four frames::

    [topic, head, schema, body]

``topic``  ``b"<node>/<output>\\0"``: NUL-terminated, because SUB filters are byte prefixes
           (``cam/image`` would otherwise also match ``cam/image2``).
``head``   a fixed struct (magic, version, kind, sequence number, send time in ns) followed by
           the message metadata as UTF-8 JSON (empty when there is none).
``schema`` the Arrow schema message of the value's one-column batch (cached on both sides;
           empty when ``body`` is a whole IPC stream, for dictionary arrays, and for SHM, EOS, FAILED).
``body``   the Arrow record batch message (DATA); for a flat array (fixed width, no nulls: see
           ``_layout``) its values buffer alone, rebuilt around the received frame (FLAT); or a
           shared-memory descriptor (SHM).

The Arrow layout (column name, which values are flat, IPC framing) and the checks on values
from a peer are defined here once (``_layout``, ``_guard``); ``_shm`` imports them.

End of stream (the sender finished; ``EOS``) and failure (the sender crashed; ``FAILED``) are
sent in-band on each output's topic, so a receiver sees them after the last data message.
"""

from __future__ import annotations

from ._arrow import BatchDecoder, decode_value, encode_batch, encode_value, to_arrow, value_bytes
from ._frames import (
    HEAD_SIZE,
    MARKER_PREFIX,
    MessageKind,
    UnreadableValue,
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
from ._guard import DECODE_ERRORS, checked, reject_compressed
from ._layout import (
    COLUMN,
    IPC_EOS,
    MESSAGE_HEAD,
    byte_width,
    flat_values,
    has_dictionary,
    is_flat,
    message_length,
)
from ._metadata import OTEL_CONTEXT_KEY, TIMESTAMP_KEY, decode_metadata, encode_metadata, timestamp_of

__all__ = [
    "COLUMN",
    "DECODE_ERRORS",
    "IPC_EOS",
    "MESSAGE_HEAD",
    "byte_width",
    "checked",
    "flat_values",
    "has_dictionary",
    "is_flat",
    "message_length",
    "reject_compressed",
    "BatchDecoder",
    "encode_batch",
    "HEAD_SIZE",
    "MARKER_PREFIX",
    "OTEL_CONTEXT_KEY",
    "TIMESTAMP_KEY",
    "MessageKind",
    "UnreadableValue",
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
    "timestamp_of",
    "to_arrow",
    "value_bytes",
]
