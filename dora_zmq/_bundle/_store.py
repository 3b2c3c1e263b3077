"""A content-addressed cache of bundles on disk, and the receiving end of a transfer.

The coordinator keeps the bundles the CLI uploaded and serves them to daemons; each daemon
keeps the ones it fetched. Both are a :class:`BundleStore`: ``<root>/<sha256>.tar.gz``, written
only once verified (a partial transfer lives in ``<root>/.partial/`` until its digest matches,
then is renamed into place atomically), so a file named by a digest held those bytes when it
was written. Stores do not fsync (it would stall their owner's loop on a slow disk): a bundle is
hashed again before it is used (:meth:`BundleStore.verified`, the daemon's unpack), and one a
power cut damaged is removed and transferred again. The digest is checked against
``[0-9a-f]{64}`` before it names any file.

Bounded: after each new bundle the least recently used ones (by modification time, refreshed
on each use) are removed until at most ``cache_count`` bundles and ``cache_bytes`` remain;
bundles the owner pins (those of running dataflows) are never removed. Partial files older
than an hour (a killed process's) are removed when a store opens.

Threading: a store and its receivers belong to one thread (the coordinator's or the daemon's
event loop). Another thread may read a bundle's file once it has its path, as long as the
owner pins the digest meanwhile (the daemon's unpacking worker does).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path

from .._errors import BundleError
from ._transfer import CHUNK_BYTES, BundleLimits, check_digest, short_digest

__all__ = ["BundleReceiver", "BundleStore", "file_digest"]

log = logging.getLogger(__name__)

_SUFFIX = ".tar.gz"
_PARTIAL = ".partial"
_PARTIAL_MAX_AGE_S = 3600.0
_HASH_BLOCK = 1024 * 1024


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, lower-case hex (about 1 GB/s here).

    Raises:
        OSError: the file cannot be read.
    """
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_HASH_BLOCK):
            sha.update(block)
    return sha.hexdigest()


class BundleStore:
    """Verified bundles under ``root``, by digest.

    Args:
        root: the cache folder (created, private to this user).
        limits: the largest bundle accepted and how much the cache keeps.
    """

    def __init__(self, root: Path, limits: BundleLimits | None = None) -> None:
        self.root = Path(root)
        self.limits = limits or BundleLimits()
        try:
            (self.root / _PARTIAL).mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise BundleError(f"cannot use {self.root} as a bundle cache: {exc}") from exc
        self._sweep_partials()

    def path(self, digest: str) -> Path | None:
        """The verified bundle's file, marked as just used; None if this store lacks it."""
        path = self.root / (check_digest(digest) + _SUFFIX)
        try:
            os.utime(path)
        except OSError:
            return None
        return path

    def has(self, digest: str) -> bool:
        """Whether this store holds the bundle (and marks it used)."""
        return self.path(digest) is not None

    def verified(self, digest: str) -> bool:
        """Whether this store holds the bundle and its bytes still hash to its name.

        A bundle damaged on disk (a power cut: stores do not fsync) is removed, so the next
        transfer replaces it.
        """
        path = self.path(digest)
        if path is None:
            return False
        try:
            if file_digest(path) == digest:
                return True
        except OSError:
            pass
        log.warning("bundle %s in %s is damaged: removed", short_digest(digest), self.root)
        path.unlink(missing_ok=True)
        return False

    def size(self, digest: str) -> int | None:
        """The bundle's size in bytes, or None if this store lacks it."""
        try:
            return (self.root / (check_digest(digest) + _SUFFIX)).stat().st_size
        except OSError:
            return None

    def read(self, digest: str, offset: int, length: int = CHUNK_BYTES) -> bytes:
        """Up to ``length`` bytes of a bundle from ``offset``.

        Raises:
            BundleError: this store does not hold it (any more).
        """
        path = self.root / (check_digest(digest) + _SUFFIX)
        try:
            with open(path, "rb") as f:
                f.seek(max(0, offset))
                return f.read(max(0, min(length, CHUNK_BYTES)))
        except OSError as exc:
            raise BundleError(
                f"bundle {short_digest(digest)} is not in the cache at {self.root}: {exc.strerror}"
            ) from exc

    def add(self, data: bytes, pinned: frozenset[str] = frozenset()) -> str:
        """Store ``data`` whole (e.g. a bundle packed on this machine); returns its digest."""
        receiver = self.receive(hashlib.sha256(data).hexdigest(), len(data))
        for offset in range(0, len(data), CHUNK_BYTES):
            receiver.write(offset, data[offset : offset + CHUNK_BYTES])
        receiver.commit(pinned)
        return receiver.digest

    def receive(self, digest: str, size: int) -> "BundleReceiver":
        """Start receiving bundle ``digest`` of ``size`` bytes.

        Raises:
            BundleError: an invalid digest, or a size over the limit.
        """
        check_digest(digest)
        if not isinstance(size, int) or size <= 0 or size > self.limits.max_bytes:
            raise BundleError(
                f"bundle {short_digest(digest)} of {size} bytes refused: "
                f"the limit here is {self.limits.max_bytes} bytes "
                "($DORA_ZMQ_SHIP_MAX_SIZE on the coordinator and daemons)"
            )
        return BundleReceiver(self, digest, size)

    def evict(self, pinned: frozenset[str] | set[str] = frozenset()) -> list[str]:
        """Remove the least recently used bundles beyond the limits; returns their digests."""
        entries = []
        for entry in os.scandir(self.root):
            if entry.name.endswith(_SUFFIX) and entry.is_file(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                entries.append((info.st_mtime, info.st_size, entry.name[: -len(_SUFFIX)], entry.path))
        entries.sort()
        count = len(entries)
        total = sum(e[1] for e in entries)
        removed = []
        for _, size, digest, path in entries:
            if count <= self.limits.cache_count and total <= self.limits.cache_bytes:
                break
            if digest in pinned:
                continue
            try:
                os.unlink(path)
            except OSError:
                continue
            count -= 1
            total -= size
            removed.append(digest)
        if removed:
            log.info("bundle cache %s: removed %d least recently used bundle(s)", self.root, len(removed))
        return removed

    def digests(self) -> list[str]:
        """Digests of every bundle held."""
        return sorted(e.name[: -len(_SUFFIX)] for e in os.scandir(self.root) if e.name.endswith(_SUFFIX))

    def _sweep_partials(self) -> None:
        cutoff = time.time() - _PARTIAL_MAX_AGE_S
        for entry in os.scandir(self.root / _PARTIAL):
            try:
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError:
                continue


class BundleReceiver:
    """One bundle arriving chunk by chunk, in order, hashed as it comes.

    Attributes:
        digest: the bundle's announced digest.
        size: its announced size.
        offset: how many bytes arrived so far (where the next chunk starts).
        last_activity: ``time.monotonic()`` of the last chunk (to expire stalled transfers).
    """

    def __init__(self, store: BundleStore, digest: str, size: int) -> None:
        self.store = store
        self.digest = digest
        self.size = size
        self.offset = 0
        self.last_activity = time.monotonic()
        self._hash = hashlib.sha256()
        fd, name = tempfile.mkstemp(prefix=digest[:16] + ".", suffix=".part", dir=store.root / _PARTIAL)
        self._partial = Path(name)
        self._file = os.fdopen(fd, "wb")

    @property
    def complete(self) -> bool:
        """Every byte arrived."""
        return self.offset == self.size

    def write(self, offset: int, data: bytes) -> None:
        """Append a chunk that starts at ``offset``.

        Raises:
            BundleError: out of order, larger than a chunk, or past the announced size.
        """
        if offset != self.offset:
            raise BundleError(f"bundle {short_digest(self.digest)}: chunk at {offset}, expected {self.offset}")
        if len(data) > CHUNK_BYTES or self.offset + len(data) > self.size or not data:
            raise BundleError(
                f"bundle {short_digest(self.digest)}: chunk of {len(data)} bytes at {offset} "
                f"does not fit its size {self.size}"
            )
        self._file.write(data)
        self._hash.update(data)
        self.offset += len(data)
        self.last_activity = time.monotonic()

    def commit(self, pinned: frozenset[str] | set[str] = frozenset()) -> Path:
        """Verify the digest and move the bundle into the cache; returns its path.

        Raises:
            BundleError: incomplete, or the bytes do not hash to the announced digest.
        """
        try:
            if not self.complete:
                raise BundleError(f"bundle {short_digest(self.digest)}: {self.offset} of {self.size} bytes arrived")
            actual = self._hash.hexdigest()
            if actual != self.digest:
                raise BundleError(
                    f"bundle {short_digest(self.digest)} refused: "
                    f"its bytes hash to {short_digest(actual)} (damaged or forged)"
                )
            # No fsync: it could hold the owner's event loop (and its heartbeats) for seconds
            # on a slow card, and is not needed: a bundle is hashed again before every use,
            # and one damaged by a power cut is removed and fetched again.
            self._file.close()
            final = self.store.root / (self.digest + _SUFFIX)
            os.replace(self._partial, final)  # atomic: a digest's file is whole or absent
        except BaseException:
            self.abort()
            raise
        log.info("bundle %s stored in %s (%d bytes)", short_digest(self.digest), self.store.root, self.size)
        self.store.evict(set(pinned) | {self.digest})
        return final

    def abort(self) -> None:
        """Drop what arrived (idempotent)."""
        if not self._file.closed:
            self._file.close()
        try:
            self._partial.unlink()
        except FileNotFoundError:
            pass
