"""Message metadata: a JSON object of scalars and lists, as dora's metadata parameters."""

from __future__ import annotations

import datetime
import json
import json.decoder
import json.encoder
from typing import Any, Callable, Mapping

from .._errors import ProtocolError

__all__ = ["OTEL_CONTEXT_KEY", "TIMESTAMP_KEY", "decode_metadata", "encode_metadata", "timestamp_of"]

#: dora's metadata key for the W3C trace context (``traceparent:...`` entries).
OTEL_CONTEXT_KEY = "open_telemetry_context"
#: The key of a received message's send time in its metadata (a UTC ``datetime``, as dora's).
TIMESTAMP_KEY = "timestamp"
_UTC = datetime.timezone.utc
_from_timestamp = datetime.datetime.fromtimestamp


def timestamp_of(ns: int) -> datetime.datetime:
    """The ``timestamp`` metadata of a message sent at ``ns`` (nanoseconds since the epoch)."""
    return _from_timestamp(ns / 1e9, _UTC)


_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _fast_encoder() -> Callable[[Any], str]:
    """The C encoder of ``json`` called directly: half the cost of ``JSONEncoder.encode``.

    Metadata is encoded once per message, so the Python layers of ``json`` (argument
    handling, the one-shot iterator) are a measurable part of a small message's cost.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python built without the C accelerator
        return _encoder.encode
    # markers=None: no circular-reference check; a circular value ends in RecursionError,
    # which encode_metadata reports like any other unserialisable value.
    chunks = make(None, _encoder.default, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    return lambda obj: "".join(chunks(obj, 0))


_encode = _fast_encoder()
# The C scanner alone (what json.loads calls after its Python checks): a third of the cost.
# typeshed does not declare scan_once (JSONDecoder.__init__ sets it), hence the ignore.
_scan: Callable[[str, int], tuple[Any, int]] = json.decoder.JSONDecoder().scan_once  # type: ignore[attr-defined]


def encode_metadata(metadata: Mapping[str, Any] | None) -> bytes:
    """Encode metadata as compact UTF-8 JSON (empty bytes for no metadata).

    Raises:
        TypeError: when a value is not JSON-serialisable, naming the key.
    """
    if not metadata:
        return b""
    if isinstance(metadata.get(TIMESTAMP_KEY), datetime.datetime):
        # a received message's timestamp (relayed with its metadata): each message gets its own
        metadata = {k: v for k, v in metadata.items() if k != TIMESTAMP_KEY}
        if not metadata:
            return b""
    try:
        return _encode(metadata if type(metadata) is dict else dict(metadata)).encode()
    except (TypeError, ValueError, RecursionError) as exc:
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
        text = raw.decode() if isinstance(raw, bytes) else bytes(raw).decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"metadata is not valid UTF-8: {exc}") from exc
    try:
        value, end = _scan(text, 0)
    except (StopIteration, json.JSONDecodeError):
        end = -1
    except (ValueError, RecursionError) as exc:  # 4,300-digit integers; nesting past the stack
        raise ProtocolError(f"metadata is not acceptable JSON: {exc}") from exc
    if end != len(text):  # not what our encoder writes: let json.loads judge (and explain)
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            raise ProtocolError(f"metadata is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ProtocolError("metadata is not a JSON object")
    return value


def _serialisable(value: Any) -> bool:
    try:
        _encoder.encode(value)
    except (TypeError, ValueError, RecursionError):
        return False
    return True
