"""The daemon's side of shipping: fetch a dataflow's bundle, verify it, unpack it to run from.

A ``SpawnNodes`` that carries a bundle (``start --ship auto|always``) names the dataflow's
folder by its digest. :func:`runs_in_place` decides whether this daemon needs it: in ``auto``
mode a daemon that sees the very folder the CLI packed (same path, same device and inode
numbers, the same YAML text in it) runs the nodes there, as before; otherwise the bundle is
unpacked into the dataflow's run folder (``<run dir>/<dataflow id>/work``) and the nodes run
from that copy: their working directory, ``path:`` and operators' ``python:`` resolve there.

:class:`Shipments` gets the bundle: from this daemon's cache (``<cache>/daemon-<machine>``)
when an earlier start left it there, else from the coordinator, one ``FetchBundle`` /
``BundleChunk`` per ``CHUNK_BYTES`` (256 KiB), up to ``WINDOW_CHUNKS`` requests in flight (the
requests are the flow control; a stalled transfer fails after ``FETCH_STALL_S``). The digest is
checked as the bytes arrive and again before every unpack, and the unpacker treats the archive
as hostile (``dora_zmq._bundle``).

Threading: owned by the daemon's event loop. Unpacking (and the digest check before it) runs
on one worker thread so that a large folder does not hold up heartbeats; the worker touches
only the files of its job, and hands back its result through a ``Future`` the loop polls.
Digests being fetched or unpacked are pinned against the cache's eviction.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import _control as ctl
from .._bundle import (
    CHUNK_BYTES,
    WINDOW_CHUNKS,
    BundleLimits,
    BundleReceiver,
    BundleStore,
    cache_root,
    check_digest,
    decode_chunk,
    file_digest,
    short_digest,
    unpack_bundle,
)
from .._errors import BundleError

__all__ = ["FETCH_STALL_S", "WORK_DIR", "Shipments", "missing_folder", "runs_in_place"]

log = logging.getLogger(__name__)

#: The unpacked folder's name inside a dataflow's run folder.
WORK_DIR = "work"
#: A fetch with no chunk for this long fails (the coordinator went away or stopped serving).
FETCH_STALL_S = 30.0


def runs_in_place(msg: ctl.SpawnNodes) -> bool:
    """Whether this daemon runs ``msg``'s nodes from ``working_dir`` itself (no bundle needed).

    ``never``: always (the folder must be there). ``always``: never. ``auto``: only when the
    folder here is the one the CLI packed: a same-path folder on another machine (an old
    rsync, another checkout) is not, and a stale copy would run silently.
    """
    if msg.ship == ctl.ShipMode.NEVER or msg.bundle is None:
        return True
    if msg.ship != ctl.ShipMode.AUTO:
        return False
    try:
        info = os.stat(msg.working_dir)
        if f"{info.st_dev}:{info.st_ino}" != msg.folder_id:
            return False
        return not msg.path or Path(msg.path).read_text() == msg.yaml
    except (OSError, UnicodeDecodeError):
        return False


def missing_folder(working_dir: Path, machine_id: str, *, refused: bool) -> str:
    """Why a dataflow whose folder is not here cannot run, and what to do.

    Args:
        refused: it came with a bundle, which this daemon does not accept (``--no-shipped``);
            else it was started with ``--ship never``.
    """
    where = f"the dataflow's folder {working_dir} is not on machine '{machine_id or '(default)'}'"
    if refused:
        return (
            f"{where}, and its daemon runs only folders present on its machine (started with --no-shipped): "
            "put the folder there at the same path, or run that daemon without --no-shipped"
        )
    return (
        f"{where}: it was started with --ship never, which needs the folder at the same path on every machine "
        "(a shared mount, rsync, or an image); "
        "start it with --ship auto (the default) to send the folder to the daemons"
    )


@dataclass(slots=True)
class _Fetch:
    receiver: BundleReceiver
    waiting: list[tuple[str, Path]] = field(default_factory=list)  # (dataflow id, unpack into)
    requested: int = 0  # the next offset to ask for (up to WINDOW_CHUNKS ahead of the receiver)


class Shipments:
    """Bundles being fetched and unpacked for one daemon.

    Args:
        cache_dir: the cache folder (``cache_root`` when None); the store is
            ``<cache_dir>/daemon-<machine_id>``.
        machine_id: this daemon's machine id.
        send: sends a control message to the coordinator.
    """

    def __init__(self, cache_dir: Path | None, machine_id: str, send: Callable[[Any], object]) -> None:
        self._cache_dir = cache_dir
        self._machine = machine_id or "default"
        self._send = send
        self._store: BundleStore | None = None
        self._fetches: dict[str, _Fetch] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._unpacking: dict[Future[int], tuple[str, str, Path]] = {}
        self._done: list[tuple[str, Path, str]] = []
        self.bytes_fetched = 0

    @property
    def store(self) -> BundleStore:
        """This daemon's cache (and its limits, from the environment), made on first use.

        Raises:
            BundleError: the cache folder cannot be made, or a limit variable is invalid.
        """
        if self._store is None:
            self._store = BundleStore(cache_root(self._cache_dir) / f"daemon-{self._machine}", BundleLimits.from_env())
        return self._store

    def request(self, dataflow_id: str, bundle: ctl.BundleRef, dest: Path) -> None:
        """Unpack ``bundle`` into ``dest`` for a dataflow: from the cache, or fetched first.

        The outcome comes out of :meth:`poll`, now or later.
        """
        try:
            digest = check_digest(bundle.digest)
            path = self.store.path(digest)
            if path is not None:
                log.info(
                    "dataflow %s: bundle %s found in the cache, nothing to fetch", dataflow_id, short_digest(digest)
                )
                self._unpack(dataflow_id, digest, path, dest)
                return
            fetch = self._fetches.get(digest)
            if fetch is None:
                fetch = self._fetches[digest] = _Fetch(self.store.receive(digest, bundle.size))
                log.info(
                    "dataflow %s: fetching bundle %s (%d bytes) from the coordinator",
                    dataflow_id,
                    short_digest(digest),
                    bundle.size,
                )
                self._request_more(fetch)
            fetch.waiting.append((dataflow_id, dest))
        except BundleError as exc:
            self._done.append((dataflow_id, dest, str(exc)))

    def on_chunk(self, msg: ctl.BundleChunk) -> None:
        """A chunk from the coordinator: store it, ask for the next, unpack when whole."""
        fetch = self._fetches.get(msg.digest)
        if fetch is None:
            log.debug("bundle chunk for %s, which is not being fetched, ignored", short_digest(msg.digest))
            return
        receiver = fetch.receiver
        if msg.offset != receiver.offset:
            # Answers come in order on one connection, so this is a late answer to an earlier
            # fetch of the same bundle that failed: harmless (same digest, same bytes), dropped.
            log.debug(
                "bundle %s: chunk at %d while expecting %d, ignored",
                short_digest(msg.digest),
                msg.offset,
                receiver.offset,
            )
            return
        try:
            data = decode_chunk(msg.data)
            receiver.write(msg.offset, data)
            self.bytes_fetched += len(data)
            if not receiver.complete:
                self._request_more(fetch)
                return
            path = receiver.commit(self._pinned())
            del self._fetches[receiver.digest]  # after: a failed commit must still fail its waiters
        except BundleError as exc:
            self._fail_fetch(receiver.digest, str(exc))
            return
        for dataflow_id, dest in fetch.waiting:
            self._unpack(dataflow_id, receiver.digest, path, dest)

    def on_unavailable(self, msg: ctl.BundleUnavailable) -> None:
        """The coordinator cannot serve a bundle being fetched."""
        if msg.digest in self._fetches:
            self._fail_fetch(msg.digest, f"the coordinator cannot serve it: {msg.error}")

    def poll(self) -> list[tuple[str, Path, str]]:
        """Finished jobs: ``(dataflow id, folder, error)``; ``error`` is "" when the folder is ready."""
        now = time.monotonic()
        for digest, fetch in list(self._fetches.items()):
            if now - fetch.receiver.last_activity > FETCH_STALL_S:
                self._fail_fetch(digest, f"no chunk from the coordinator for {FETCH_STALL_S:g} s")
        for future in [f for f in self._unpacking if f.done()]:
            dataflow_id, digest, dest = self._unpacking.pop(future)
            exc = future.exception()
            if exc is None:
                log.info(
                    "dataflow %s: bundle %s unpacked into %s (%d files)",
                    dataflow_id,
                    short_digest(digest),
                    dest,
                    future.result(),
                )
                self._done.append((dataflow_id, dest, ""))
            else:
                error = str(exc) if isinstance(exc, BundleError) else f"{type(exc).__name__}: {exc}"
                self._done.append((dataflow_id, dest, error))
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        """Drop fetches in progress and wait for a running unpack (bounded by the size limit)."""
        for fetch in self._fetches.values():
            fetch.receiver.abort()
        self._fetches.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def _request_more(self, fetch: _Fetch) -> None:
        """Keep up to ``WINDOW_CHUNKS`` chunk requests in flight (the requests are the flow control)."""
        receiver = fetch.receiver
        while fetch.requested < receiver.size and fetch.requested < receiver.offset + WINDOW_CHUNKS * CHUNK_BYTES:
            self._send(ctl.FetchBundle(receiver.digest, fetch.requested))
            fetch.requested += CHUNK_BYTES

    def _unpack(self, dataflow_id: str, digest: str, path: Path, dest: Path) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="dora-zmq-unpack")
        future = self._executor.submit(_verify_and_unpack, path, digest, dest, self.store.limits)
        self._unpacking[future] = (dataflow_id, digest, dest)

    def _fail_fetch(self, digest: str, error: str) -> None:
        fetch = self._fetches.pop(digest, None)
        if fetch is None:
            return
        fetch.receiver.abort()
        log.warning("bundle %s: fetch failed: %s", short_digest(digest), error)
        for dataflow_id, dest in fetch.waiting:
            self._done.append((dataflow_id, dest, error))

    def _pinned(self) -> set[str]:
        return set(self._fetches) | {digest for _, digest, _ in self._unpacking.values()}


def _verify_and_unpack(path: Path, digest: str, dest: Path, limits: BundleLimits) -> int:
    """Worker thread: check the cached archive still hashes to its name, then unpack it."""
    try:
        actual = file_digest(path)
    except OSError as exc:
        raise BundleError(f"cannot read bundle {short_digest(digest)} from the cache: {exc}") from exc
    if actual != digest:
        path.unlink(missing_ok=True)  # a damaged cache entry: the next start fetches it again
        raise BundleError(
            f"bundle {short_digest(digest)} in the cache at {path.parent} is damaged (removed; start again)"
        )
    return unpack_bundle(path, dest, max_bytes=limits.max_bytes, max_entries=limits.max_entries)
