"""SegmentReader: integrity for every size and type, zero copy, release on garbage collection,
and refusal of stale or forged descriptors."""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import random
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pytest

from dora_zmq._errors import ProtocolError
from dora_zmq._shm import SegmentPool, SegmentReader, ShmDescriptor, shm_dir
from dora_zmq._wire import decode_value, encode_value

from .conftest import Releases

MIB = 1 << 20
SIZES = [0, 1, 7, 8, 4095, 4096, 65_536, 65_537, MIB - 1, MIB, 4_096_000, 16 * MIB, 64 * MIB]


def _bytes(n: int, seed: int = 0) -> pa.Array:
    return pa.array(np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8))


def _round_trip(pool: SegmentPool, reader: SegmentReader, value: pa.Array) -> pa.Array:
    desc = pool.write(value, {"r"})
    assert desc is not None
    out = reader.open(desc)
    out.validate(full=True)
    return out


@pytest.mark.parametrize("size", SIZES)
def test_bytes_of_every_size(pool: SegmentPool, reader: SegmentReader, releases: Releases, size: int) -> None:
    value = _bytes(size, size)
    out = _round_trip(pool, reader, value)
    assert out.type == pa.uint8() and len(out) == size
    assert out.equals(value)
    del out
    gc.collect()
    assert releases.forward(pool) == 1


VALUES = {
    "int64": pa.array(np.arange(-5000, 5000, dtype=np.int64)),
    "float32_nulls": pa.array([1.5, None, float("inf"), -0.0] * 100, pa.float32()),
    "bool_nulls": pa.array([True, None, False] * 333),
    "timestamps": pa.array(np.arange(100).astype("datetime64[us]")),
    "strings": pa.array(["", "é", None, "dora" * 50] * 250),
    "large_strings": pa.array(["x" * 1000, None] * 10, pa.large_string()),
    "binary": pa.array([b"\x00\xff" * 7, None, b""] * 20),
    "list_int": pa.array([[1, 2], [], None, list(range(100))] * 50),
    "list_struct": pa.array(
        [[{"x": 1, "y": "a"}, {"x": None, "y": None}], None, []] * 100,
        pa.list_(pa.struct([("x", pa.int32()), ("y", pa.string())])),
    ),
    "struct_nested": pa.array(
        [{"pose": {"x": 1.0, "q": [0.0, 1.0]}, "name": "a"}, None, {"pose": None, "name": "b"}] * 50
    ),
    "fixed_size_list": pa.array([[1.0, 2.0, 3.0]] * 200, pa.list_(pa.float64(), 3)),
    "map": pa.array([[("k", 1), ("l", 2)], None] * 10, pa.map_(pa.string(), pa.int64())),
    "dictionary": pa.array(["left", "right", None, "left"] * 100).dictionary_encode(),
    "decimal": pa.array([1, 2, None], pa.decimal128(10, 2)),
    "null": pa.nulls(17),
    "empty_strings": pa.array([], pa.string()),
    "sliced_strings": pa.array([str(i) for i in range(1000)]).slice(123, 456),
    "sliced_bools": pa.array([i % 3 == 0 for i in range(1000)]).slice(3, 100),
}


@pytest.mark.parametrize("kind", sorted(VALUES))
def test_types(pool: SegmentPool, reader: SegmentReader, releases: Releases, kind: str) -> None:
    value = VALUES[kind]
    out = _round_trip(pool, reader, value)
    assert out.type == value.type
    assert out.to_pylist() == value.to_pylist()
    del out
    gc.collect()
    assert releases.forward(pool) == 1


def test_segment_holds_the_same_body_as_the_socket_path(pool: SegmentPool) -> None:
    """The lead can treat both paths alike: the segment holds exactly ``encode_value``'s bytes."""
    value = VALUES["list_struct"]
    desc = pool.write(value, {"r"})
    assert desc is not None
    with open(os.path.join(shm_dir(), desc.segment), "rb") as f:
        f.seek(desc.offset)
        body = f.read(desc.length)
    assert body == encode_value(value).to_pybytes()
    assert decode_value(body).equals(value)


def test_open_is_zero_copy(pool: SegmentPool, reader: SegmentReader) -> None:
    desc = pool.write(_bytes(MIB), {"r"})
    assert desc is not None
    out = reader.open(desc)
    mapping = reader._maps[desc.segment]  # white box: where the segment is mapped
    data = out.buffers()[1]
    assert mapping.address + desc.offset <= data.address
    assert data.address + data.size <= mapping.address + desc.offset + desc.length
    assert not data.is_mutable
    with pytest.raises(ValueError):
        out.to_numpy(zero_copy_only=True)[0] = 1  # read-only memory


def test_release_fires_once_when_the_array_is_garbage(
    pool: SegmentPool, reader: SegmentReader, releases: Releases
) -> None:
    desc = pool.write(pa.array(np.arange(10_000)), {"r"})
    assert desc is not None
    arr = reader.open(desc)
    cycle: list[object] = [arr]
    cycle.append(cycle)  # only the cycle collector can free it
    del arr
    assert releases.seen == []
    assert reader.live == 1
    del cycle
    gc.collect()
    assert releases.seen == [desc]
    assert reader.live == 0
    gc.collect()
    assert releases.seen == [desc]


def test_empty_array_is_released_at_once(pool: SegmentPool, reader: SegmentReader, releases: Releases) -> None:
    """An array that aliases nothing holds nothing: no reason to keep the segment."""
    desc = pool.write(pa.array([], pa.int64()), {"r"})
    assert desc is not None
    out = reader.open(desc)
    gc.collect()
    assert len(out) == 0
    assert len(releases.seen) <= 1  # released now or with ``out``, never leaked
    del out
    gc.collect()
    assert releases.tokens() == [desc.token]


def test_reused_segment_never_reaches_a_holder_of_the_old_token(
    make_pool: Callable[..., SegmentPool], reader: SegmentReader, releases: Releases
) -> None:
    """Many writes through a small pool; random holds; held data never changes."""
    pool = make_pool(max_bytes=4 * MIB)
    rng = random.Random(42)
    held: list[tuple[pa.Array, int]] = []
    fallbacks = 0
    for i in range(200):
        size = rng.choice([1000, 100_000, 700_000])
        desc = pool.write(pa.array(np.full(size, i % 251, dtype=np.uint8)), {"r"})
        if desc is None:
            fallbacks += 1
        else:
            arr = reader.open(desc)
            if rng.random() < 0.3:
                held.append((arr.slice(rng.randrange(size)), i % 251))
            del arr
        if held and rng.random() < 0.3:
            held.pop(rng.randrange(len(held)))
        releases.forward(pool)  # no cycles here: reference counting frees at once
        for kept, fill in held:  # nothing we hold was overwritten
            assert kept.to_numpy().min(initial=fill) == fill == kept.to_numpy().max(initial=fill)
    stats = pool.stats()
    assert stats.reused > 80 and stats.fallbacks > 0 and stats.bytes_total <= 4 * MIB
    assert fallbacks == stats.fallbacks
    del held, kept
    gc.collect()
    releases.forward(pool)
    assert pool.outstanding() == {}


def test_stale_descriptor_is_refused(pool: SegmentPool, reader: SegmentReader, releases: Releases) -> None:
    old = pool.write(pa.array([1, 2, 3]), {"r"})
    assert old is not None
    del_me = reader.open(old)
    del del_me
    gc.collect()
    releases.forward(pool)
    with pytest.raises(ProtocolError, match="token"):
        reader.open(old)  # released: the header was cleared
    assert releases.tokens() == [old.token]
    releases.seen.clear()
    new = pool.write(pa.array([4, 5, 6]), {"r"})
    assert new is not None and new.segment == old.segment
    with pytest.raises(ProtocolError):
        reader.open(old)  # reused for another token
    assert reader.open(new).to_pylist() == [4, 5, 6]


@pytest.mark.parametrize(
    "change",
    [
        {"offset": 0},  # would read the header as data
        {"offset": 64 + (1 << 20)},  # beyond the segment
        {"length": 1 << 30},
        {"pid": 1},
        {"token": 7},
        {"segment": "dora-zmq-nope_000000-x-1-1"},  # no such file
    ],
)
def test_forged_descriptor_is_refused_and_reported(
    pool: SegmentPool, reader: SegmentReader, releases: Releases, change: dict[str, object]
) -> None:
    desc = pool.write(pa.array([1, 2, 3]), {"r"})
    assert desc is not None
    bad = dataclasses.replace(desc, **change)  # type: ignore[arg-type]
    with pytest.raises(ProtocolError):
        reader.open(bad)
    assert releases.seen == [bad]
    assert reader.open(desc).to_pylist() == [1, 2, 3]  # the good one still works


def test_corrupt_body_is_refused_and_reported(pool: SegmentPool, reader: SegmentReader, releases: Releases) -> None:
    desc = pool.write(pa.array(np.arange(100)), {"r"})
    assert desc is not None
    fd = os.open(os.path.join(shm_dir(), desc.segment), os.O_WRONLY)
    try:
        os.pwrite(fd, b"\xff" * 64, desc.offset)  # the header still matches; the body does not
    finally:
        os.close(fd)
    with pytest.raises(ProtocolError, match="Arrow IPC"):
        reader.open(desc)
    gc.collect()
    assert releases.seen == [desc] and reader.live == 0


def test_discard_reports_without_mapping(pool: SegmentPool, releases: Releases) -> None:
    desc = pool.write(pa.array([1]), {"r"})
    assert desc is not None
    reader = SegmentReader(releases)
    reader.discard(desc)
    assert releases.seen == [desc] and reader.stats().mapped == 0
    reader.close()


def test_reader_survives_the_writer_unlinking(pool: SegmentPool, reader: SegmentReader) -> None:
    value = _bytes(3 * MIB, 3)
    desc = pool.write(value, {"r"})
    assert desc is not None
    out = reader.open(desc)
    os.unlink(os.path.join(shm_dir(), desc.segment))
    gc.collect()
    assert out.equals(value)


def test_idle_mappings_of_removed_segments_are_dropped(
    make_pool: Callable[..., SegmentPool], reader: SegmentReader, releases: Releases
) -> None:
    pool = make_pool(max_bytes=2 * MIB)
    first = pool.write(_bytes(10), {"r"})
    assert first is not None
    del_me = reader.open(first)
    del del_me
    gc.collect()
    releases.forward(pool)
    assert reader.stats().mapped == 1
    second = pool.write(_bytes(1_500_000), {"r"})  # 2 MiB: evicts (unlinks) the first
    assert second is not None and pool.stats().evicted == 1
    held = reader.open(second)  # a new mapping: the reader notices the removal
    stats = reader.stats()
    assert (stats.mapped, stats.mapped_bytes, stats.live) == (1, 2 * MIB, 1)
    assert reader.trim() == 0  # in use
    del held
    gc.collect()
    assert reader.trim() == 1 and reader.stats().mapped == 0


def test_close_stops_callbacks_and_live_arrays_stay_valid(pool: SegmentPool, releases: Releases) -> None:
    reader = SegmentReader(releases)
    desc = pool.write(pa.array(np.arange(1000)), {"r"})
    assert desc is not None
    out = reader.open(desc)
    reader.close()
    assert out.to_pylist() == list(range(1000))
    del out
    gc.collect()
    assert releases.seen == []  # the writer learns through reader_gone instead
    with pytest.raises(RuntimeError):
        reader.open(desc)
    pool.reader_gone("r")


def test_a_failing_callback_is_logged_not_raised(pool: SegmentPool, caplog: pytest.LogCaptureFixture) -> None:
    def boom(desc: ShmDescriptor) -> None:
        raise RuntimeError("transport closed")

    reader = SegmentReader(boom)
    desc = pool.write(pa.array([1]), {"r"})
    assert desc is not None
    out = reader.open(desc)
    with caplog.at_level(logging.ERROR, logger="dora_zmq._shm"):
        del out
        gc.collect()
    assert "on_release callback failed" in caplog.text
    reader.close()
