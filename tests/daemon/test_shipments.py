"""The daemon's side of shipping, driven message by message (no sockets, no processes)."""

from __future__ import annotations

import os
import time
from concurrent.futures import wait
from pathlib import Path
from typing import Any

import pytest

from dora_zmq import _control as ctl
from dora_zmq._bundle import CHUNK_BYTES, WINDOW_CHUNKS, Bundle, encode_chunk, pack_folder
from dora_zmq.daemon import _shipments
from dora_zmq.daemon._shipments import Shipments, runs_in_place


@pytest.fixture
def bundle(tmp_path: Path) -> Bundle:
    folder = tmp_path / "flow"
    folder.mkdir()
    (folder / "dataflow.yml").write_text("nodes: []\n")
    (folder / "big.bin").write_bytes(os.urandom(CHUNK_BYTES * 2))  # random: 3 chunks packed
    return pack_folder(folder)


class _Coordinator:
    """Records what the daemon sends; serves chunks of one bundle on demand."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.sent: list[Any] = []

    def __call__(self, msg: Any) -> bool:
        self.sent.append(msg)
        return True

    def chunk(self, offset: int, data: bytes | None = None) -> ctl.BundleChunk:
        body = data if data is not None else self.bundle.data[offset : offset + CHUNK_BYTES]
        return ctl.BundleChunk(self.bundle.digest, offset, encode_chunk(body))


def _serve_all(shipments: Shipments, coordinator: _Coordinator, damage_at: int = -1) -> int:
    """Answer every request in order (as one connection delivers them), flipping a bit of the
    chunk at ``damage_at``."""
    served = 0
    while coordinator.sent and isinstance(coordinator.sent[0], ctl.FetchBundle):
        request = coordinator.sent.pop(0)
        data = bytearray(coordinator.bundle.data[request.offset : request.offset + CHUNK_BYTES])
        if request.offset == damage_at:
            data[0] ^= 1
        shipments.on_chunk(coordinator.chunk(request.offset, bytes(data)))
        served += 1
    return served


def _finish(shipments: Shipments, count: int = 1) -> list[tuple[str, Path, str]]:
    """The next ``count`` finished jobs (unpacking runs on the worker thread)."""
    deadline = time.monotonic() + 10
    done: list[tuple[str, Path, str]] = []
    while len(done) < count and time.monotonic() < deadline:
        wait(list(shipments._unpacking), timeout=1)  # noqa: SLF001 - the worker's futures
        done += shipments.poll()
    return sorted(done)


def test_fetch_once_for_two_dataflows_then_the_cache(tmp_path: Path, bundle: Bundle) -> None:
    coordinator = _Coordinator(bundle)
    shipments = Shipments(tmp_path / "cache", "m1", coordinator)
    ref = ctl.BundleRef(bundle.digest, bundle.size)
    try:
        shipments.request("df1", ref, tmp_path / "w1")
        shipments.request("df2", ref, tmp_path / "w2")  # same bundle, already on its way
        # One fetch for both, its first requests sent at once (a window, not one round trip each).
        assert (
            coordinator.sent
            == [ctl.FetchBundle(bundle.digest, o) for o in range(0, bundle.size, CHUNK_BYTES)][:WINDOW_CHUNKS]
        )
        assert _serve_all(shipments, coordinator) == -(-bundle.size // CHUNK_BYTES)
        done = _finish(shipments, 2)
        assert [(d, e) for d, _, e in done] == [("df1", ""), ("df2", "")]
        assert (tmp_path / "w1" / "big.bin").read_bytes() == (bundle.folder / "big.bin").read_bytes()
        assert shipments.bytes_fetched == bundle.size

        shipments.request("df3", ref, tmp_path / "w3")  # a restart: from the cache, nothing sent
        assert coordinator.sent == []
        assert [(d, e) for d, _, e in _finish(shipments)] == [("df3", "")]
        assert shipments.bytes_fetched == bundle.size
    finally:
        shipments.close()


def test_a_damaged_transfer_fails_its_dataflows_and_stores_nothing(tmp_path: Path, bundle: Bundle) -> None:
    coordinator = _Coordinator(bundle)
    shipments = Shipments(tmp_path / "cache", "m1", coordinator)
    try:
        shipments.request("df1", ctl.BundleRef(bundle.digest, bundle.size), tmp_path / "w1")
        _serve_all(shipments, coordinator, damage_at=CHUNK_BYTES)
        [(df, _, error)] = shipments.poll()
        assert df == "df1" and "damaged or forged" in error
        assert not (tmp_path / "w1").exists() and shipments.store.digests() == []
    finally:
        shipments.close()


def test_unavailable_and_stalled_fetches_fail_with_the_reason(
    tmp_path: Path, bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    coordinator = _Coordinator(bundle)
    shipments = Shipments(tmp_path / "cache", "m1", coordinator)
    ref = ctl.BundleRef(bundle.digest, bundle.size)
    try:
        shipments.request("df1", ref, tmp_path / "w1")
        shipments.on_unavailable(ctl.BundleUnavailable(bundle.digest, "evicted"))
        assert [(d, e) for d, _, e in shipments.poll()] == [("df1", "the coordinator cannot serve it: evicted")]

        shipments.request("df2", ref, tmp_path / "w2")
        monkeypatch.setattr(_shipments, "FETCH_STALL_S", 0.0)
        [(df, _, error)] = shipments.poll()
        assert df == "df2" and "no chunk from the coordinator" in error
    finally:
        shipments.close()


def test_a_bundle_larger_than_this_daemon_accepts_is_refused(
    tmp_path: Path, bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DORA_ZMQ_SHIP_MAX_SIZE", "1k")
    coordinator = _Coordinator(bundle)
    shipments = Shipments(tmp_path / "cache", "m1", coordinator)
    try:
        shipments.request("df1", ctl.BundleRef(bundle.digest, bundle.size), tmp_path / "w1")
        assert coordinator.sent == []
        [(df, _, error)] = shipments.poll()
        assert "limit here is 1024 bytes" in error
    finally:
        shipments.close()


def _spawn(tmp_path: Path, ship: str, folder_id: str, path: str = "") -> ctl.SpawnNodes:
    return ctl.SpawnNodes(
        "df",
        "n",
        "nodes: []\n",
        str(tmp_path),
        ["a"],
        ship=ship,
        bundle=ctl.BundleRef("a" * 64, 1),
        folder_id=folder_id,
        path=path,
    )


def test_runs_in_place_only_for_the_very_folder(tmp_path: Path) -> None:
    yml = tmp_path / "dataflow.yml"
    yml.write_text("nodes: []\n")
    info = tmp_path.stat()
    same = f"{info.st_dev}:{info.st_ino}"
    assert runs_in_place(_spawn(tmp_path, ctl.ShipMode.AUTO, same, str(yml)))
    assert not runs_in_place(
        _spawn(tmp_path, ctl.ShipMode.AUTO, f"{info.st_dev}:{info.st_ino + 1}", str(yml))
    )  # another folder
    yml.write_text("nodes: [] # edited since\n")
    assert not runs_in_place(_spawn(tmp_path, ctl.ShipMode.AUTO, same, str(yml)))
    assert not runs_in_place(_spawn(tmp_path, ctl.ShipMode.ALWAYS, same, str(yml)))
    assert runs_in_place(_spawn(tmp_path, ctl.ShipMode.NEVER, "", ""))
    assert not runs_in_place(_spawn(tmp_path / "missing", ctl.ShipMode.AUTO, same, ""))


def test_late_chunks_of_a_failed_fetch_do_not_spoil_the_next(tmp_path: Path, bundle: Bundle) -> None:
    coordinator = _Coordinator(bundle)
    shipments = Shipments(tmp_path / "cache", "m1", coordinator)
    ref = ctl.BundleRef(bundle.digest, bundle.size)
    try:
        shipments.request("df1", ref, tmp_path / "w1")
        late = [m for m in coordinator.sent if m.offset > 0]  # still in flight when it fails
        coordinator.sent.clear()
        shipments.on_unavailable(ctl.BundleUnavailable(bundle.digest, "restarting"))
        assert [d for d, _, _ in shipments.poll()] == ["df1"]
        shipments.request("df2", ref, tmp_path / "w2")  # a new fetch from 0
        for request in late:  # answers to the first fetch arrive first, as on one connection
            shipments.on_chunk(coordinator.chunk(request.offset))
        _serve_all(shipments, coordinator)
        assert [(d, e) for d, _, e in _finish(shipments)] == [("df2", "")]
    finally:
        shipments.close()
