"""The contract of a bundle transfer: digest form, chunk size and codec, limits and cache place.

Defined once here and imported by the CLI (sender), the coordinator (store and relay) and the
daemons (receivers), so the two ends of a transfer cannot disagree.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .._errors import BundleError

__all__ = [
    "CHUNK_BYTES",
    "SHORT_DIGEST_CHARS",
    "DEFAULT_CACHE_BYTES",
    "DEFAULT_CACHE_COUNT",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ENTRIES",
    "ENV_CACHE_DIR",
    "ENV_MAX_SIZE",
    "WINDOW_CHUNKS",
    "BundleLimits",
    "cache_root",
    "check_digest",
    "decode_chunk",
    "encode_chunk",
    "parse_size",
    "short_digest",
]

#: Raw bytes per chunk message. A chunk travels base64 in a JSON control message (about
#: 350 KB on the wire): small enough not to stall the control socket's other traffic
#: (heartbeats, logs) for long, large enough that a 100 MB folder is 400 round trips.
CHUNK_BYTES = 256 * 1024
#: Chunks a sender keeps in flight (requested or sent, not yet answered): enough to hide a
#: round trip of a few tens of ms on a fast link, bounded so a transfer never floods the
#: control socket's queues (at most about 1.4 MB of base64 waiting per transfer).
WINDOW_CHUNKS = 4
#: Largest folder (sum of its shipped files) and largest archive, unless configured.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
#: Most files and folders in one bundle (the unpacker refuses more).
DEFAULT_MAX_ENTRIES = 50_000
#: What the coordinator and each daemon keep of bundles they received (least recently used go).
DEFAULT_CACHE_BYTES = 2 * 1024 * 1024 * 1024
DEFAULT_CACHE_COUNT = 64

ENV_MAX_SIZE = "DORA_ZMQ_SHIP_MAX_SIZE"
ENV_CACHE_DIR = "DORA_ZMQ_CACHE_DIR"
ENV_CACHE_SIZE = "DORA_ZMQ_BUNDLE_CACHE_SIZE"
ENV_CACHE_COUNT = "DORA_ZMQ_BUNDLE_CACHE_COUNT"

_DIGEST = re.compile(r"[0-9a-f]{64}\Z")
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*\Z", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def check_digest(digest: object) -> str:
    """``digest`` if it is a sha256 in lower-case hex (it names files: nothing else may pass).

    Raises:
        BundleError: anything else.
    """
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise BundleError(f"invalid bundle digest {str(digest)[:80]!r} (expected 64 lower-case hex digits)")
    return digest


#: Hex digits of a digest that logs and error messages show: 48 bits tell a reader's few
#: bundles apart, the full 64 would bury the message. Only ever for people: files and
#: messages name a bundle by its whole digest.
SHORT_DIGEST_CHARS = 12


def short_digest(digest: str) -> str:
    """How logs and error messages name a bundle: the first ``SHORT_DIGEST_CHARS`` of its digest."""
    return digest[:SHORT_DIGEST_CHARS]


def encode_chunk(data: bytes) -> str:
    """Chunk bytes as the text a JSON control message carries."""
    return base64.b64encode(data).decode("ascii")


def decode_chunk(text: str) -> bytes:
    """The bytes of a chunk received as text.

    Raises:
        BundleError: not strict base64, or longer than a chunk may be.
    """
    if len(text) > (CHUNK_BYTES // 3 + 1) * 4:
        raise BundleError(f"bundle chunk of {len(text)} characters is larger than a chunk may be")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BundleError(f"bundle chunk is not valid base64: {exc}") from exc


def parse_size(text: str) -> int:
    """Bytes from ``"1048576"``, ``"100M"``, ``"1.5GiB"``, ``"512k"`` (binary units).

    Raises:
        ValueError: not a size.
    """
    m = _SIZE.match(text)
    if m is None:
        raise ValueError(f"not a size: {text!r} (e.g. 100M, 1G, 500000)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _env_size(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return parse_size(raw)
    except ValueError as exc:
        raise BundleError(f"${name}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class BundleLimits:
    """How much a bundle may hold, and how much of them a cache keeps.

    Attributes:
        max_bytes: the largest folder (sum of file sizes) and the largest archive.
        max_entries: the most files and folders in one bundle.
        cache_bytes: what a cache keeps in total before evicting the least recently used.
        cache_count: the most bundles a cache keeps.
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    max_entries: int = DEFAULT_MAX_ENTRIES
    cache_bytes: int = DEFAULT_CACHE_BYTES
    cache_count: int = DEFAULT_CACHE_COUNT

    @classmethod
    def from_env(cls) -> "BundleLimits":
        """Limits from ``$DORA_ZMQ_SHIP_MAX_SIZE``, ``$DORA_ZMQ_BUNDLE_CACHE_SIZE`` and
        ``$DORA_ZMQ_BUNDLE_CACHE_COUNT`` (defaults otherwise)."""
        count = os.environ.get(ENV_CACHE_COUNT, "")
        return cls(
            max_bytes=_env_size(ENV_MAX_SIZE, DEFAULT_MAX_BYTES),
            cache_bytes=_env_size(ENV_CACHE_SIZE, DEFAULT_CACHE_BYTES),
            cache_count=int(count) if count.isdigit() else DEFAULT_CACHE_COUNT,
        )


def cache_root(given: str | os.PathLike[str] | None = None) -> Path:
    """Where bundle caches live: ``given``, else ``$DORA_ZMQ_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/dora-zmq`` (``~/.cache/dora-zmq``)."""
    if given:
        return Path(given)
    if env := os.environ.get(ENV_CACHE_DIR):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "dora-zmq"
