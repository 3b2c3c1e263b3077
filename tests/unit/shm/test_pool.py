"""SegmentPool: reuse after release, never before, reader bookkeeping, limits, closing."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pytest

from dora_zmq._errors import ProtocolError
from dora_zmq._shm import HEADER_SIZE, SegmentPool, SegmentReader, ShmDescriptor, shm_dir
from dora_zmq._shm import _framing as framing_module
from dora_zmq._shm import _pool as pool_module

from .conftest import Releases, segment_files

MIB = 1 << 20


def _bytes(n: int, seed: int = 0) -> pa.Array:
    return pa.array(np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8))


def test_reuse_after_release(pool: SegmentPool, reader: SegmentReader, releases: Releases) -> None:
    first = pool.write(_bytes(1000, 1), {"r"})
    assert first is not None
    arr = reader.open(first)
    del arr
    gc.collect()
    assert releases.forward(pool) == 1
    second = pool.write(_bytes(1000, 2), {"r"})
    assert second is not None
    assert second.segment == first.segment and second.token != first.token
    stats = pool.stats()
    assert (stats.created, stats.reused, stats.writes, stats.segments) == (1, 1, 2, 1)
    assert reader.open(second).equals(_bytes(1000, 2))


@pytest.mark.parametrize("keep", ["array", "slice", "buffer", "numpy", "struct_child"])
def test_no_reuse_while_a_reader_holds_any_view(
    pool: SegmentPool, reader: SegmentReader, releases: Releases, keep: str
) -> None:
    value = (
        pa.StructArray.from_arrays([pa.array(np.arange(5000))], ["x"])
        if keep == "struct_child"
        else pa.array(np.arange(5000))
    )
    desc = pool.write(value, {"r"})
    assert desc is not None
    arr = reader.open(desc)
    held = {
        "array": lambda a: a,
        "slice": lambda a: a.slice(4000, 10),
        "buffer": lambda a: a.buffers()[1],
        "numpy": lambda a: a.to_numpy(zero_copy_only=True)[100:200],
        "struct_child": lambda a: a.field(0).slice(100),
    }[keep](arr)
    del arr
    gc.collect()
    assert releases.seen == []  # still referenced: not released
    for i in range(5):  # later writes must not land in the held segment
        other = pool.write(pa.array(np.full(5000, -i)), {"r"})
        assert other is not None and _where(other) != _where(desc)
        pool.release(other.token, "r")
    assert pool.outstanding() == {desc.token: frozenset({"r"})}
    expected = np.arange(5000)
    if keep == "slice":
        assert held.to_pylist() == list(range(4000, 4010))
    elif keep == "buffer":
        assert np.frombuffer(held, dtype=np.int64).tolist() == expected.tolist()
    elif keep == "numpy":
        assert held.tolist() == list(range(100, 200))
    elif keep == "struct_child":
        assert held.to_pylist() == list(range(100, 5000))
    else:
        assert held.to_pylist() == expected.tolist()
    del held
    gc.collect()
    assert releases.tokens() == [desc.token]


def test_every_reader_must_release(pool: SegmentPool) -> None:
    desc = pool.write(pa.array([1, 2, 3]), {"a", "b"})
    assert desc is not None
    assert pool.release(desc.token, "a")
    assert not pool.release(desc.token, "a")  # a duplicate is ignored, not counted
    assert not pool.release(desc.token, "stranger")
    assert pool.stats().in_use == 1
    assert pool.release(desc.token, "b")
    assert pool.stats().in_use == 0
    assert not pool.release(desc.token, "b")  # late
    assert not pool.release(12345, "a")  # unknown token


def test_reader_gone_releases_what_it_held(pool: SegmentPool) -> None:
    d1 = pool.write(pa.array([1]), {"a", "b"})
    d2 = pool.write(pa.array([2]), {"b"})
    d3 = pool.write(pa.array([3]), {"a"})
    assert d1 and d2 and d3
    assert pool.reader_gone("b") == 2
    assert pool.outstanding() == {d1.token: frozenset({"a"}), d3.token: frozenset({"a"})}
    assert pool.reader_gone("b") == 0
    assert pool.reader_gone("a") == 2
    assert pool.outstanding() == {}
    assert pool.write(pa.array([4]), {"a"}).segment in {d1.segment, d2.segment, d3.segment}


def test_full_pool_falls_back_instead_of_blocking(make_pool: Callable[..., SegmentPool]) -> None:
    pool = make_pool(max_bytes=2 * MIB)
    held = [pool.write(_bytes(600_000), {"r"}) for _ in range(2)]  # 1 MiB segments each
    assert all(held)
    assert pool.write(_bytes(600_000), {"r"}) is None
    assert pool.write(_bytes(10), {"r"}) is None  # even a small one: no room at all
    assert pool.write(_bytes(3 * MIB), {"r"}) is None  # larger than the whole pool
    assert pool.stats().fallbacks == 3
    pool.release(held[0].token, "r")  # type: ignore[union-attr]
    assert pool.write(_bytes(600_000), {"r"}) is not None


def test_free_segments_are_evicted_lru_when_over_budget(
    make_pool: Callable[..., SegmentPool], dataflow_id: str
) -> None:
    pool = make_pool(max_bytes=4 * MIB)
    small = [pool.write(_bytes(100), {"r"}) for _ in range(3)]  # 3 slots of one 768 KiB slab
    assert len({d.segment for d in small}) == 1  # type: ignore[union-attr]
    mid = pool.write(_bytes(MIB + 10), {"r"})  # a 2 MiB segment
    assert mid is not None
    pool.release(mid.token, "r")
    for d in small:
        pool.release(d.token, "r")  # type: ignore[union-attr]
    big = pool.write(_bytes(2 * MIB + 10), {"r"})  # 3 MiB: the LRU idle slab must go first
    assert big is not None
    stats = pool.stats()
    assert stats.evicted == 2 and stats.segments == 1 and stats.bytes_total == 3 * MIB
    assert [os.path.basename(p) for p in segment_files(dataflow_id)] == [big.segment]


def test_best_fit_reuses_the_smallest_free_segment_that_fits(pool: SegmentPool) -> None:
    big = pool.write(_bytes(5 * MIB), {"r"})
    mid = pool.write(_bytes(2 * MIB), {"r"})
    small = pool.write(_bytes(100), {"r"})
    assert big and mid and small
    for d in (big, mid, small):
        pool.release(d.token, "r")
    assert _where(pool.write(_bytes(200), {"r"})) == _where(small)  # its slot, the last freed
    assert pool.write(_bytes(MIB + 1), {"r"}).segment == mid.segment  # type: ignore[union-attr]
    assert pool.write(_bytes(3 * MIB), {"r"}).segment == big.segment  # type: ignore[union-attr]


def test_small_values_share_a_slab_and_reuse_its_slots(pool: SegmentPool, reader: SegmentReader) -> None:
    descs = [pool.write(_bytes(40_000, i), {"r"}) for i in range(10)]
    assert all(descs) and len({d.segment for d in descs}) == 1  # type: ignore[union-attr]
    assert len({_where(d) for d in descs}) == 10
    for i, d in enumerate(descs):
        assert reader.open(d).equals(_bytes(40_000, i))  # type: ignore[arg-type]
        pool.release(d.token, "r")  # type: ignore[union-attr]
    stats = pool.stats()
    assert stats.created == 1 and stats.in_use == 0
    again = pool.write(_bytes(40_000), {"r"})
    assert _where(again) == _where(descs[-1])  # the slot freed last: its memory is warm
    assert pool.stats().created == 1


def test_release_during_the_write_keeps_the_segment_reserved(
    pool: SegmentPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = framing_module._write_stream
    nested = []

    def racing(*args: object) -> int | None:
        monkeypatch.setattr(framing_module, "_write_stream", real)
        assert pool.reader_gone("r") == 1  # the only reader dies while we copy
        nested.append(pool.write(pa.array([9]), {"x"}))  # must not be given our segment
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(framing_module, "_write_stream", racing)
    desc = pool.write(_with_a_null(1000), {"r"})  # not flat: the stream writer's path
    assert desc is not None and nested[0] is not None
    assert _where(nested[0]) != _where(desc)
    assert set(pool.outstanding()) == {nested[0].token}  # ours was freed when the write ended
    again = pool.write(pa.array([1]), {"r"})
    assert again is not None and _where(again) == _where(desc)


def test_release_during_a_flat_write_keeps_the_segment_reserved(
    pool: SegmentPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = framing_module.pack_header
    nested = []

    def racing(*args: object) -> None:
        monkeypatch.setattr(framing_module, "pack_header", real)
        assert pool.reader_gone("r") == 1  # the only reader dies while we copy
        nested.append(pool.write(pa.array([9]), {"x"}))  # must not be given our segment
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(framing_module, "pack_header", racing)
    desc = pool.write(pa.array(np.arange(1000)), {"r"})
    assert desc is not None and nested[0] is not None
    assert _where(nested[0]) != _where(desc)
    assert set(pool.outstanding()) == {nested[0].token}


def _where(desc: ShmDescriptor | None) -> tuple[str, int]:
    """Which memory a message lies in: its file, and its 64 KiB slot there (0 for a segment)."""
    assert desc is not None
    return desc.segment, (desc.offset - HEADER_SIZE) // (64 * 1024)


def _with_a_null(n: int) -> pa.Array:
    return pa.array([None, *range(n - 1)], pa.int64())


def test_a_wrong_size_estimate_is_corrected_or_falls_back(
    pool: SegmentPool, reader: SegmentReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = pool_module.stream_size
    monkeypatch.setattr(pool_module, "stream_size", lambda batch: real(batch) - 8)
    value = _with_a_null(1000)  # not flat: sized by stream_size
    desc = pool.write(value, {"r"})  # too small: measured exactly, still fits the segment
    assert desc is not None and reader.open(desc).equals(value)
    monkeypatch.setattr(pool_module, "stream_size", lambda batch: 10)
    assert pool.write(_with_a_null(MIB // 8), {"r"}) is None  # does not fit what was reserved: socket
    stats = pool.stats()
    assert stats.fallbacks == 1 and stats.in_use == 1  # only the first, still held


def test_close_unlinks_everything_but_readers_keep_their_data(
    pool: SegmentPool, reader: SegmentReader, releases: Releases, dataflow_id: str
) -> None:
    desc = pool.write(_bytes(2 * MIB, 7), {"r"})
    pool.write(_bytes(100), {"r"})
    assert desc is not None
    arr = reader.open(desc)
    pool.close()
    pool.close()  # idempotent
    assert segment_files(dataflow_id) == []
    assert arr.equals(_bytes(2 * MIB, 7))  # the mapping outlives the name
    with pytest.raises(RuntimeError):
        pool.write(pa.array([1]), {"r"})
    assert not pool.release(desc.token, "r")
    del arr
    gc.collect()
    assert releases.tokens() == [desc.token]
    late = Releases()
    with SegmentReader(late) as other, pytest.raises(ProtocolError):
        other.open(desc)  # the name is gone
    assert late.tokens() == [desc.token]  # a failed open is still reported once


def test_bad_arguments(pool: SegmentPool) -> None:
    with pytest.raises(TypeError):
        pool.write(b"bytes", {"r"})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        pool.write(pa.array([1]), set())
    with pytest.raises(TypeError):
        pool.write(pa.array([1]), "reader-1")  # a set of characters would be wrong
    with pytest.raises(ValueError):
        SegmentPool("df", "n", max_bytes=0)


def test_segments_are_private_files_in_the_shm_dir(pool: SegmentPool) -> None:
    desc = pool.write(pa.array([1]), {"r"})
    assert desc is not None
    st = os.stat(os.path.join(shm_dir(), desc.segment))
    assert st.st_mode & 0o777 == 0o600
    assert desc.pid == os.getpid() and desc.offset >= 64  # after the header


@pytest.mark.parametrize(
    "value",
    [
        pa.array((np.arange(1001) % 256).astype(np.uint8)),
        pa.array(np.arange(1001, dtype=np.int32)),
        pa.array(np.linspace(0, 1, 999)),
        pa.array(np.arange(5).astype("datetime64[ns]")),
        pa.array([b"abcd", b"efgh"], pa.binary(4)),
        pa.array([1, 2, 3], pa.decimal128(10, 2)),
        pa.array(np.arange(100, dtype=np.int16)).slice(3, 50),  # an offset: the values are sliced out
        pa.ExtensionArray.from_storage(pa.uuid(), pa.array([bytes(range(16))] * 3, pa.binary(16))),  # storage's width
        _with_a_null(77),  # a validity buffer: the stream writer
        pa.array(["text"]),  # variable width: the stream writer
        pa.array(np.arange(0, dtype=np.float32)),
    ],
    ids=["u8", "i32", "f64", "ts", "fsb", "dec", "slice", "uuid", "null", "str", "empty"],
)
def test_every_layout_reads_back_equal_and_aligned(pool: SegmentPool, reader: SegmentReader, value: pa.Array) -> None:
    for _ in range(2):  # the second write uses the cached stream prefix
        desc = pool.write(value, {"r"})
        assert desc is not None
        got = reader.open(desc)
        assert got.type == value.type and got.equals(value)
        data = got.buffers()[1]
        flat = not pa.types.is_string(value.type) and value.null_count == 0 and not value.offset
        if flat and len(value):
            assert data.address % 64 == 0
        del got


def test_a_small_budget_gets_small_slabs_and_falls_back_when_full(
    make_pool: Callable[..., SegmentPool], reader: SegmentReader, dataflow_id: str
) -> None:
    pool = make_pool(max_bytes=MIB)  # slabs of a quarter of the budget: 4 slots of 64 KiB
    held = [pool.write(_bytes(40_000, i), {"r"}) for i in range(16)]
    assert all(held)
    stats = pool.stats()
    assert stats.segments == 4 and stats.bytes_total == MIB and stats.fallbacks == 0
    assert pool.write(_bytes(40_000), {"r"}) is None  # full of unreleased messages: the socket
    assert pool.stats().fallbacks == 1
    for i, d in enumerate(held):
        assert reader.open(d).equals(_bytes(40_000, i))  # type: ignore[arg-type]
        pool.release(d.token, "r")  # type: ignore[union-attr]
    assert pool.write(_bytes(40_000), {"r"}) is not None  # released slots serve again
    assert pool.stats().created == 4 and len(segment_files(dataflow_id)) == 4


def test_idle_slabs_make_room_for_a_large_value(make_pool: Callable[..., SegmentPool], dataflow_id: str) -> None:
    pool = make_pool(max_bytes=2 * MIB)
    small = [pool.write(_bytes(40_000), {"r"}) for _ in range(16)]  # 2 slabs of 512 KiB
    big = pool.write(_bytes(MIB + 10), {"r"})  # a 2 MiB segment: no room while slots are held
    assert big is None
    for d in small:
        pool.release(d.token, "r")  # type: ignore[union-attr]
    big = pool.write(_bytes(MIB + 10), {"r"})
    assert big is not None
    assert [os.path.basename(p) for p in segment_files(dataflow_id)] == [big.segment]
