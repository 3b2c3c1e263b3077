"""The bundle cache: verified before it is named, bounded, and safe against hostile digests."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from dora_zmq._bundle import CHUNK_BYTES, BundleLimits, BundleStore, decode_chunk, encode_chunk, parse_size
from dora_zmq._bundle._transfer import check_digest
from dora_zmq._errors import BundleError


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_chunks_in_order_then_verified_and_named(tmp_path: Path) -> None:
    store = BundleStore(tmp_path)
    data = os.urandom(CHUNK_BYTES * 2 + 10)
    receiver = store.receive(_sha(data), len(data))
    for offset in range(0, len(data), CHUNK_BYTES):
        assert not store.has(receiver.digest)  # nothing under its name before it is whole
        receiver.write(offset, data[offset : offset + CHUNK_BYTES])
    path = receiver.commit()
    assert path.read_bytes() == data and store.has(_sha(data))
    assert store.read(_sha(data), CHUNK_BYTES) == data[CHUNK_BYTES : 2 * CHUNK_BYTES]
    assert list((tmp_path / ".partial").iterdir()) == []


def test_out_of_order_oversized_and_past_the_end_chunks_are_refused(tmp_path: Path) -> None:
    store = BundleStore(tmp_path)
    receiver = store.receive("a" * 64, 100)
    with pytest.raises(BundleError, match="expected 0"):
        receiver.write(10, b"x")
    with pytest.raises(BundleError, match="does not fit"):
        receiver.write(0, b"x" * 101)
    receiver.abort()
    assert list((tmp_path / ".partial").iterdir()) == []


def test_bytes_that_do_not_match_the_digest_are_never_stored(tmp_path: Path) -> None:
    store = BundleStore(tmp_path)
    receiver = store.receive(_sha(b"the real bundle"), len(b"a forged bundle"))
    receiver.write(0, b"a forged bundle")
    with pytest.raises(BundleError, match="damaged or forged"):
        receiver.commit()
    assert store.digests() == [] and list((tmp_path / ".partial").iterdir()) == []


@pytest.mark.parametrize("digest", ["../../etc/passwd", "A" * 64, "a" * 63, "a" * 64 + "\n", "", 42, None])
def test_hostile_digests_name_no_file(tmp_path: Path, digest: object) -> None:
    store = BundleStore(tmp_path / "cache")
    with pytest.raises(BundleError, match="invalid bundle digest"):
        store.receive(digest, 10)  # type: ignore[arg-type]
    with pytest.raises(BundleError, match="invalid bundle digest"):
        store.read(digest, 0)  # type: ignore[arg-type]
    with pytest.raises(BundleError):
        check_digest(digest)


def test_size_over_the_limit_is_refused_before_anything_arrives(tmp_path: Path) -> None:
    store = BundleStore(tmp_path, BundleLimits(max_bytes=1000))
    with pytest.raises(BundleError, match="limit here is 1000"):
        store.receive("b" * 64, 1001)
    with pytest.raises(BundleError):
        store.receive("b" * 64, 0)


def test_eviction_keeps_the_recently_used_and_the_pinned(tmp_path: Path) -> None:
    store = BundleStore(tmp_path, BundleLimits(cache_count=3, cache_bytes=10_000))
    digests = []
    for i in range(3):
        digests.append(store.add(bytes([i]) * 100))
        os.utime(store.root / f"{digests[-1]}.tar.gz", (time.time() - 100 + i, time.time() - 100 + i))
    assert store.path(digests[0]) is not None  # used: now the most recent
    fourth = store.add(b"d" * 100, pinned=frozenset({digests[1]}))
    # Over the count by one: the least recently used unpinned one (digests[2]) goes.
    assert set(store.digests()) == {digests[0], digests[1], fourth}


def test_eviction_by_total_size(tmp_path: Path) -> None:
    store = BundleStore(tmp_path, BundleLimits(cache_count=100, cache_bytes=250))
    first = store.add(b"1" * 100)
    os.utime(store.root / f"{first}.tar.gz", (1, 1))
    second = store.add(b"2" * 100)
    third = store.add(b"3" * 100)
    assert set(store.digests()) == {second, third}


def test_stale_partials_are_swept_when_a_store_opens(tmp_path: Path) -> None:
    BundleStore(tmp_path)
    old = tmp_path / ".partial" / "dead.part"
    fresh = tmp_path / ".partial" / "busy.part"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    BundleStore(tmp_path)
    assert not old.exists() and fresh.exists()


def test_chunk_codec_refuses_bad_text() -> None:
    assert decode_chunk(encode_chunk(b"\0\1\2")) == b"\0\1\2"
    with pytest.raises(BundleError, match="base64"):
        decode_chunk("not base64!")
    with pytest.raises(BundleError, match="larger than a chunk"):
        decode_chunk("A" * (CHUNK_BYTES * 2))


@pytest.mark.parametrize(
    ("text", "size"), [("100", 100), ("1k", 1024), ("100M", 100 << 20), ("1.5GiB", 3 << 29), ("2 MB", 2 << 20)]
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "-1", "1X", "lots"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_a_bundle_damaged_on_disk_is_not_verified_and_goes(tmp_path: Path) -> None:
    store = BundleStore(tmp_path)
    digest = store.add(b"bundle bytes")
    assert store.verified(digest)
    (tmp_path / f"{digest}.tar.gz").write_bytes(b"bundle bytez")  # a power cut, a bad disk
    assert not store.verified(digest)
    assert not store.has(digest)  # removed: the next upload or fetch replaces it
