"""Message metadata: a JSON object of scalars and lists, as dora's metadata parameters."""

from __future__ import annotations

import json
from typing import Any, Mapping

from .._errors import ProtocolError

__all__ = ["OTEL_CONTEXT_KEY", "decode_metadata", "encode_metadata"]

#: dora's metadata key for the W3C trace context (``traceparent:...`` entries).
OTEL_CONTEXT_KEY = "open_telemetry_context"

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode_metadata(metadata: Mapping[str, Any] | None) -> bytes:
    """Encode metadata as compact UTF-8 JSON (empty bytes for no metadata).

    Raises:
        TypeError: when a value is not JSON-serialisable, naming the key.
    """
    if not metadata:
        return b""
    try:
        return _encoder.encode(metadata).encode()
    except (TypeError, ValueError) as exc:
        bad = [k for k, v in metadata.items() if not _serialisable(v)]
        raise TypeError(
            f"metadata values must be str, int, float, bool, None or lists/dicts of those; "
            f"not serialisable: {', '.join(map(repr, bad)) or '?'} ({exc})"
        ) from exc


def decode_metadata(raw: bytes | memoryview) -> dict[str, Any]:
    """Decode metadata written by :func:`encode_metadata`.

    Raises:
        ProtocolError: when the bytes are not a JSON object.
    """
    if not raw:
        return {}
    try:
        value = json.loads(bytes(raw))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"metadata is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ProtocolError("metadata is not a JSON object")
    return value


def _serialisable(value: Any) -> bool:
    try:
        _encoder.encode(value)
    except (TypeError, ValueError):
        return False
    return True
