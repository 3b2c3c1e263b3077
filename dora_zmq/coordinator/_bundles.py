"""The coordinator's side of shipping: it receives bundles from the CLI and serves daemons.

An upload is ``OfferBundle`` then ``BundleChunk`` after ``BundleChunk``, each answered with
``BundleWanted`` (the next offset), so the CLI never has more than one chunk in flight and a
bundle the coordinator holds already is answered at once with its full size: nothing is sent
twice. Daemons pull with ``FetchBundle``, one chunk per request.

Bundles live in a :class:`~dora_zmq._bundle.BundleStore` under the cache folder
(``<cache>/coordinator``), made on first use; the bundles of dataflows still running are
pinned, so the cache's eviction never removes one a daemon may still fetch.

Threading: owned by the coordinator's event loop thread, like everything the coordinator has.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

from .. import _control as ctl
from .._bundle import BundleLimits, BundleReceiver, BundleStore, cache_root, check_digest, decode_chunk, encode_chunk
from .._bundle import short_digest
from .._errors import BundleError

__all__ = ["BundleService"]

log = logging.getLogger(__name__)

# An upload with no chunk for this long is dropped (the CLI died or gave up).
UPLOAD_STALL_S = 30.0
# Uploads in progress at once (each holds an open partial file of up to the size limit).
MAX_UPLOADS = 8


class BundleService:
    """Uploads in, chunks out, for one coordinator.

    Args:
        cache_dir: the cache folder (``dora_zmq._bundle.cache_root`` when None); the store
            itself is ``<cache_dir>/coordinator``.
        pinned: returns the digests still needed (those of dataflows not finished).
    """

    def __init__(self, cache_dir: Path | None, pinned: Callable[[], set[str]]) -> None:
        self._cache_dir = cache_dir
        self._pinned = pinned
        self._store: BundleStore | None = None
        self._uploads: dict[tuple[bytes, str], BundleReceiver] = {}
        self.bytes_received = 0
        self.bytes_served = 0

    @property
    def store(self) -> BundleStore:
        """The cache, made on first use (a coordinator that never ships never touches the disk)."""
        if self._store is None:
            self._store = BundleStore(cache_root(self._cache_dir) / "coordinator", BundleLimits.from_env())
        return self._store

    def has(self, digest: str) -> bool:
        """Whether the whole, verified bundle is here."""
        return self.store.has(digest)

    def offer(self, peer: bytes, bundle: ctl.BundleRef) -> Any:
        """``OfferBundle``: where the CLI should start (the size when it is here already)."""
        # Issue 12 (CURVE roles): only a client with the operator role may upload a bundle
        # (it becomes code that daemons run); check the peer's role here and answer Failed.
        try:
            digest = check_digest(bundle.digest)
            if self.store.verified(digest):
                log.info("bundle %s: already here, nothing to upload", short_digest(digest))
                return ctl.BundleWanted(digest, bundle.size)
            self._drop_stalled()
            key = (peer, digest)
            if key not in self._uploads:
                if len(self._uploads) >= MAX_UPLOADS:
                    return ctl.Failed(f"the coordinator is receiving {MAX_UPLOADS} bundles already; try again shortly")
                self._uploads[key] = self.store.receive(digest, bundle.size)
        except BundleError as exc:
            return ctl.Failed(str(exc))
        return ctl.BundleWanted(digest, self._uploads[key].offset)

    def chunk(self, peer: bytes, msg: ctl.BundleChunk) -> Any:
        """An uploaded ``BundleChunk``: the next offset, or ``Failed`` (the upload is dropped)."""
        receiver = self._uploads.get((peer, msg.digest))
        if receiver is None:
            return ctl.Failed(f"no upload of bundle {short_digest(msg.digest)} in progress: send OfferBundle first")
        key = (peer, msg.digest)
        try:
            data = decode_chunk(msg.data)
            receiver.write(msg.offset, data)
            self.bytes_received += len(data)
            if receiver.complete:
                del self._uploads[key]
                receiver.commit(self._pinned())
        except BundleError as exc:
            self._uploads.pop(key, None)
            receiver.abort()
            log.warning("bundle upload from %r refused: %s", peer, exc)
            return ctl.Failed(str(exc))
        return ctl.BundleWanted(receiver.digest, receiver.offset)

    def fetch(self, msg: ctl.FetchBundle) -> Any:
        """A daemon's ``FetchBundle``: the chunk at ``offset``, or ``BundleUnavailable``."""
        try:
            digest = check_digest(msg.digest)
            data = self.store.read(digest, msg.offset)
        except BundleError as exc:
            return ctl.BundleUnavailable(str(msg.digest)[:64], str(exc))
        self.bytes_served += len(data)
        return ctl.BundleChunk(digest, msg.offset, encode_chunk(data))

    def tick(self) -> None:
        """Drop uploads that stalled."""
        if self._uploads:
            self._drop_stalled()

    def close(self) -> None:
        """Drop unfinished uploads (their partial files)."""
        for receiver in self._uploads.values():
            receiver.abort()
        self._uploads.clear()

    def _drop_stalled(self) -> None:
        now = time.monotonic()
        for key, receiver in list(self._uploads.items()):
            if now - receiver.last_activity > UPLOAD_STALL_S:
                log.warning(
                    "bundle %s: upload from %r stalled for %g s, dropped",
                    short_digest(receiver.digest),
                    key[0],
                    UPLOAD_STALL_S,
                )
                receiver.abort()
                del self._uploads[key]
