"""SegmentPool.reserve / publish: values written in place (output samples).

A reservation is a segment whose data region starts at ``SAMPLE_DATA_OFFSET``; the writer
fills it through NumPy or Arrow views, ``publish`` frames it as an IPC stream (no copy) and
hands it to readers. The segment is reused only once the readers released it *and* every
view the writer holds is gone.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pytest

from dora_zmq._errors import ProtocolError
from dora_zmq._shm import SegmentPool, SegmentReader, cleanup_segments
from dora_zmq._shm._layout import (
    HEADER_SIZE,
    SAMPLE_DATA_OFFSET,
    capacity_for,
    sample_capacity,
    stream_frame,
)
from dora_zmq._shm._pool import WRITER, Reservation
from dora_zmq._wire import IPC_EOS as EOS

from .conftest import Releases, segment_files

MIB = 1 << 20
SIZES = [1, 13, 4096, MIB + 7]
TYPES = {"uint8": pa.uint8(), "float32": pa.float32(), "int64": pa.int64()}


def _pattern(n: int, dtype: str, seed: int) -> np.ndarray:
    """``n`` values of ``dtype`` with arbitrary bit patterns (NaN payloads included for floats)."""
    raw = np.random.default_rng(seed).integers(0, 256, n * np.dtype(dtype).itemsize, dtype=np.uint8)
    return raw.view(dtype)


def _fill(res: Reservation, dtype: str, seed: int) -> tuple[np.ndarray, int]:
    """Fill as many whole ``dtype`` values as fit through a NumPy view of ``res.owner``."""
    width = np.dtype(dtype).itemsize
    count = res.nbytes // width
    expected = _pattern(count, dtype, seed)
    view = np.asarray(res.owner)
    assert view.flags.writeable and view.shape == (res.nbytes,)
    view[: count * width].view(dtype)[:] = expected
    return expected, count


def _bytes_of(arr: pa.Array) -> bytes:
    width = arr.type.bit_width // 8
    return arr.buffers()[1].to_pybytes()[arr.offset * width : (arr.offset + len(arr)) * width]


def _stats(pool: SegmentPool) -> tuple[int, int, int]:
    s = pool.stats()
    return s.created, s.reused, s.segments


# -- layout -----------------------------------------------------------------------------------


@pytest.mark.parametrize("type_", list(TYPES.values()), ids=list(TYPES))
@pytest.mark.parametrize("length", [0, 1, 3, 13, 1000, 262_145])
def test_stream_frame_is_the_ipc_stream_around_the_body(type_: pa.DataType, length: int) -> None:
    width = type_.bit_width // 8
    value = pa.array(_pattern(length, type_.to_pandas_dtype().__name__, 1))
    batch = pa.RecordBatch.from_arrays([value], ["value"])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as w:
        w.write_batch(batch)
    full = sink.getvalue().to_pybytes()
    prefix, body_length = stream_frame(batch)
    assert len(prefix) % 8 == 0 and len(prefix) <= SAMPLE_DATA_OFFSET - HEADER_SIZE
    assert body_length >= length * width and body_length % 8 == 0
    assert len(full) == len(prefix) + body_length + len(EOS)
    assert full[: len(prefix)] == prefix
    assert full[len(prefix) : len(prefix) + length * width] == value.buffers()[1].to_pybytes()[: length * width]
    assert full[-len(EOS) :] == EOS
    # the segment a sample of that many bytes gets holds the data, its padding and the end marker
    assert sample_capacity(length * width) >= SAMPLE_DATA_OFFSET + body_length + len(EOS)


def test_sample_capacity_rounds_like_capacity_for() -> None:
    for n in (0, 1, 4096, 60_000, 61_000, MIB, MIB + 7, 16 * MIB):
        cap = sample_capacity(n)
        assert cap == capacity_for(SAMPLE_DATA_OFFSET + n + 64 + len(EOS))
        assert cap >= SAMPLE_DATA_OFFSET + n + 64 + len(EOS)


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["from_buffers", "numpy"])
@pytest.mark.parametrize("dtype", list(TYPES))
@pytest.mark.parametrize("nbytes", SIZES)
def test_reserve_fill_publish_read_back_exactly(
    pool: SegmentPool, reader: SegmentReader, releases: Releases, nbytes: int, dtype: str, how: str
) -> None:
    res = pool.reserve(nbytes)
    assert res is not None and res.nbytes == nbytes and res.buffer.size == nbytes
    assert res.buffer.address == res.address and res.address % 64 == 0
    expected, count = _fill(res, dtype, seed=nbytes)
    if how == "from_buffers":
        value = pa.Array.from_buffers(TYPES[dtype], count, [None, res.buffer])
    else:  # an Arrow array made from a NumPy view: zero copy, so it lies at the reservation
        value = pa.array(np.asarray(res.owner)[: count * expected.itemsize].view(dtype))
    if count == 0:  # nothing of this type fits (1 byte as float32/int64): not publishable
        assert pool.publish(res.token, value, {"r"}) is None
        return
    assert value.buffers()[1].address == res.address
    desc = pool.publish(res.token, value, {"r"})
    assert desc is not None and desc.token == res.token
    out = reader.open(desc)
    out.validate(full=True)
    assert out.type == TYPES[dtype] and len(out) == count
    assert _bytes_of(out) == expected.tobytes()
    del out, value, res, expected
    gc.collect()
    assert releases.forward(pool) == 1
    reused = pool.reserve(nbytes)  # applies the writer's drop: everything is free again
    assert reused is not None and _stats(pool) == (1, 1, 1)
    assert pool.outstanding() == {reused.token: frozenset({WRITER})}


def test_publish_copies_nothing(pool: SegmentPool, reader: SegmentReader) -> None:
    """The reader aliases the very memory the writer filled (never do this in an application)."""
    res = pool.reserve(MIB)
    assert res is not None
    view = np.asarray(res.owner)
    view[:] = 1
    desc = pool.publish(res.token, pa.Array.from_buffers(pa.uint8(), MIB, [None, res.buffer]), {"r"})
    assert desc is not None
    out = reader.open(desc)
    view[12345] = 99
    assert out[12345].as_py() == 99 and out[12344].as_py() == 1


def test_one_reader_reads_many_types_and_lengths(pool: SegmentPool, reader: SegmentReader, releases: Releases) -> None:
    """The reader's schema cache (keyed by the schema's bytes) must not confuse lengths or types."""
    cases = [("uint8", 100), ("int64", 800), ("uint8", 5000), ("float32", 400), ("int64", 8), ("uint8", 100)]
    for i, (dtype, nbytes) in enumerate(cases):
        res = pool.reserve(nbytes)
        assert res is not None
        expected, count = _fill(res, dtype, seed=i)
        desc = pool.publish(res.token, pa.Array.from_buffers(TYPES[dtype], count, [None, res.buffer]), {"r"})
        assert desc is not None
        out = reader.open(desc)
        assert out.type == TYPES[dtype] and _bytes_of(out) == expected.tobytes(), (dtype, nbytes)
        del out, res
        gc.collect()
        releases.forward(pool)


@pytest.mark.parametrize("dtype", list(TYPES))
def test_an_array_shorter_than_the_reservation(pool: SegmentPool, reader: SegmentReader, dtype: str) -> None:
    nbytes = MIB + 7
    res = pool.reserve(nbytes)
    assert res is not None
    expected, _ = _fill(res, dtype, seed=3)
    for count in (1, 1001):  # the second publish is refused: only the first counts
        value = pa.Array.from_buffers(TYPES[dtype], count, [None, res.buffer])
        desc = pool.publish(res.token, value, {"r"})
        if count == 1:
            assert desc is not None
            out = reader.open(desc)
            out.validate(full=True)
            assert len(out) == 1 and _bytes_of(out) == expected[:1].tobytes()
        else:
            assert desc is None


def test_a_sliced_head_of_the_reservation(pool: SegmentPool, reader: SegmentReader) -> None:
    """A slice starting at offset 0 (its buffer still starts at the data) is published as is."""
    res = pool.reserve(4096)
    assert res is not None
    expected, count = _fill(res, "int64", seed=4)
    value = pa.Array.from_buffers(pa.int64(), count, [None, res.buffer]).slice(0, 100)
    desc = pool.publish(res.token, value, {"r"})
    assert desc is not None
    out = reader.open(desc)
    assert out.to_numpy().tobytes() == expected[:100].tobytes()


# -- reuse only when nobody can see the memory ------------------------------------------------


def test_not_reused_while_a_reader_holds_the_value(
    pool: SegmentPool, reader: SegmentReader, releases: Releases
) -> None:
    res = pool.reserve(MIB)
    assert res is not None
    expected, count = _fill(res, "uint8", seed=1)
    first = pool.publish(res.token, pa.Array.from_buffers(pa.uint8(), count, [None, res.buffer]), {"r"})
    assert first is not None
    held = reader.open(first).slice(1000, 10)  # a slice keeps the whole message
    del res
    gc.collect()  # the writer has no view any more ...
    for i in range(3):  # ... but the reader has: later samples must go elsewhere
        other = pool.reserve(MIB)
        assert other is not None
        np.asarray(other.owner)[:] = 200 + i
        assert pool.outstanding()[first.token] == frozenset({"r"})  # the writer's hold is gone
        del other
        gc.collect()
    assert _stats(pool) == (2, 2, 2)  # one new segment, reused by the next two
    assert _bytes_of(held) == expected[1000:1010].tobytes()
    del held
    gc.collect()
    assert releases.forward(pool) == 1
    again = pool.reserve(MIB)
    assert again is not None
    np.asarray(again.owner)[:] = 7
    second = pool.publish(again.token, pa.Array.from_buffers(pa.uint8(), MIB, [None, again.buffer]), {"r"})
    assert second is not None
    assert pool.stats().created == 2  # no third segment: one of the two was free
    assert reader.open(second).to_numpy().tobytes() == bytes([7]) * MIB


@pytest.mark.parametrize("keep", ["owner_view", "numpy_slice", "float_view", "buffer", "arrow_array", "reservation"])
def test_not_reused_while_the_writer_holds_a_view(
    pool: SegmentPool, reader: SegmentReader, releases: Releases, keep: str
) -> None:
    res = pool.reserve(MIB)
    assert res is not None
    expected, count = _fill(res, "uint8", seed=2)
    value = pa.Array.from_buffers(pa.uint8(), count, [None, res.buffer])
    desc = pool.publish(res.token, value, {"r"})
    assert desc is not None
    held: object
    if keep == "owner_view":
        held = np.asarray(res.owner)
    elif keep == "numpy_slice":
        held = np.asarray(res.owner)[MIB // 2 : MIB // 2 + 8]
    elif keep == "float_view":
        held = np.asarray(res.owner).view("float32").reshape(512, 512)
    elif keep == "buffer":
        held = res.buffer
    elif keep == "arrow_array":
        held = value.slice(5)
    else:
        held = res
    out = reader.open(desc)
    assert _bytes_of(out) == expected.tobytes()
    del out, value, res
    gc.collect()
    assert releases.forward(pool) == 1  # every reader is done ...
    for _ in range(3):  # ... but the writer is not: the segment stays its own
        other = pool.reserve(MIB)
        assert other is not None
        np.asarray(other.owner)[:] = 0
        assert pool.outstanding()[desc.token] == frozenset({WRITER})
        del other
        gc.collect()
    assert _stats(pool) == (2, 2, 2)
    if keep == "buffer" or keep == "reservation":
        data = np.frombuffer(held.buffer if keep == "reservation" else held, dtype=np.uint8)
        assert data.tobytes() == expected.tobytes()
    elif keep == "arrow_array":
        assert _bytes_of(held) == expected[5:].tobytes()
    else:
        assert (
            held.tobytes()
            == {
                "owner_view": expected.tobytes(),
                "numpy_slice": expected[MIB // 2 : MIB // 2 + 8].tobytes(),
                "float_view": expected.tobytes(),
            }[keep]
        )
    data = None
    del held, data
    gc.collect()
    again = pool.reserve(MIB)  # now both are gone: reuse, no new segment
    assert again is not None
    assert desc.token not in pool.outstanding()
    assert _stats(pool) == (2, 3, 2)


def test_views_in_a_reference_cycle_are_released_by_the_garbage_collector(pool: SegmentPool) -> None:
    res = pool.reserve(1000)
    assert res is not None
    cycle: list[object] = [np.asarray(res.owner)]
    cycle.append(cycle)
    del res, cycle
    gc.collect()
    again = pool.reserve(1000)
    assert again is not None and _stats(pool) == (1, 1, 1)


def test_dropping_an_unpublished_reservation_frees_the_segment(pool: SegmentPool) -> None:
    res = pool.reserve(MIB)
    assert res is not None
    np.asarray(res.owner)[:] = 5
    token = res.token
    del res
    gc.collect()
    again = pool.reserve(MIB)
    assert again is not None and again.token != token
    assert _stats(pool) == (1, 1, 1)
    assert token not in pool.outstanding()
    # and a token of a dropped reservation cannot be published any more
    assert pool.publish(token, pa.array(np.zeros(10, np.uint8)), {"r"}) is None


def test_an_empty_reservation(pool: SegmentPool) -> None:
    res = pool.reserve(0)
    assert res is not None and res.nbytes == 0 and res.buffer.size == 0
    assert np.asarray(res.owner).shape == (0,)
    empty = pa.Array.from_buffers(pa.uint8(), 0, [None, res.buffer])
    assert pool.publish(res.token, empty, {"r"}) is None  # nothing to frame: send a copy
    del res, empty
    gc.collect()
    assert pool.reserve(0) is not None and _stats(pool) == (1, 1, 1)


def test_publish_twice_returns_none(pool: SegmentPool, reader: SegmentReader, releases: Releases) -> None:
    res = pool.reserve(4096)
    assert res is not None
    expected, count = _fill(res, "int64", seed=5)
    value = pa.Array.from_buffers(pa.int64(), count, [None, res.buffer])
    desc = pool.publish(res.token, value, {"r"})
    assert desc is not None
    assert pool.publish(res.token, value, {"r"}) is None
    assert pool.publish(res.token, value, {"other"}) is None  # no reader was added either
    assert pool.outstanding()[res.token] == frozenset({WRITER, "r"})
    assert _bytes_of(reader.open(desc)) == expected.tobytes()  # the first message is intact


def test_publish_again_after_the_readers_released_returns_none(
    pool: SegmentPool, reader: SegmentReader, releases: Releases
) -> None:
    res = pool.reserve(4096)
    assert res is not None
    _fill(res, "int64", seed=5)
    value = pa.Array.from_buffers(pa.int64(), 512, [None, res.buffer])
    desc = pool.publish(res.token, value, {"r"})
    assert desc is not None
    reader.open(desc)  # opened and dropped at once
    gc.collect()
    assert releases.forward(pool) == 1
    assert pool.outstanding()[res.token] == frozenset({WRITER})
    assert pool.publish(res.token, value, {"r"}) is None  # published already


def _dropped_reservation(pool: SegmentPool) -> int:
    """The token of a 4 KiB reservation whose every view is gone already."""
    res = pool.reserve(4096)
    assert res is not None
    token = res.token
    del res
    gc.collect()
    return token


def test_publish_after_every_view_is_dropped_returns_none(pool: SegmentPool) -> None:
    token = _dropped_reservation(pool)
    # the value does not view the (dropped) reservation: the pool must not frame stale memory
    assert pool.publish(token, pa.array(np.arange(512, dtype=np.int64)), {"r"}) is None
    assert token not in pool.outstanding()


def test_publish_after_a_dropped_reservation_was_reclaimed_returns_none(pool: SegmentPool) -> None:
    token = _dropped_reservation(pool)
    other = pool.reserve(4096)  # applies the drop, and takes the same segment
    assert other is not None and _stats(pool) == (1, 1, 1)
    assert pool.publish(token, pa.array(np.arange(512, dtype=np.int64)), {"r"}) is None
    assert pool.outstanding() == {other.token: frozenset({WRITER})}


def test_publish_refuses_what_cannot_be_framed_in_place(pool: SegmentPool) -> None:
    res = pool.reserve(1000)
    assert res is not None
    np.asarray(res.owner)[:] = 1
    assert pool.publish(res.token, pa.array([True] * 100), {"r"}) is None  # bits, not bytes
    assert pool.publish(res.token, pa.array(["x"] * 100), {"r"}) is None  # variable width
    too_big = pa.array(np.zeros(sample_capacity(1000), np.uint8))  # more than the segment holds
    assert pool.publish(res.token, too_big, {"r"}) is None
    assert pool.publish(12345, pa.array(np.zeros(10, np.uint8)), {"r"}) is None  # unknown token
    assert pool.outstanding() == {res.token: frozenset({WRITER})}  # still the writer's, unpublished
    ok = pool.publish(res.token, pa.Array.from_buffers(pa.uint8(), 1000, [None, res.buffer]), {"r"})
    assert ok is not None


# -- limits and closing -----------------------------------------------------------------------


def test_a_full_pool_makes_reserve_return_none(make_pool: Callable[..., SegmentPool]) -> None:
    seg = sample_capacity(1000)
    assert seg == 64 * 1024
    pool = make_pool(max_bytes=2 * seg)
    a, b = pool.reserve(1000), pool.reserve(1000)
    assert a is not None and b is not None
    assert pool.reserve(1000) is None
    assert pool.reserve(10 * seg) is None  # bigger than the whole pool
    assert pool.stats().fallbacks == 2
    del a
    gc.collect()
    c = pool.reserve(1000)  # a's segment, freed by dropping it
    assert c is not None and _stats(pool) == (2, 1, 2)
    del b, c
    gc.collect()
    # both free: a bigger sample evicts them (least recently used first) to fit
    big = pool.reserve(seg)
    assert big is not None
    stats = pool.stats()
    assert (stats.evicted, stats.segments, stats.bytes_total) == (2, 1, sample_capacity(seg))


def test_a_pool_full_of_published_samples_waits_for_the_readers(
    make_pool: Callable[..., SegmentPool], reader: SegmentReader, releases: Releases
) -> None:
    pool = make_pool(max_bytes=sample_capacity(1000))
    res = pool.reserve(1000)
    assert res is not None
    desc = pool.publish(res.token, pa.Array.from_buffers(pa.uint8(), 1000, [None, res.buffer]), {"r"})
    assert desc is not None
    del res
    gc.collect()
    assert pool.reserve(1000) is None  # the reader has not released it
    out = reader.open(desc)
    del out
    gc.collect()
    assert releases.forward(pool) == 1
    assert pool.reserve(1000) is not None


def test_close_with_live_views_does_not_crash(
    make_pool: Callable[..., SegmentPool], reader: SegmentReader, dataflow_id: str
) -> None:
    pool = make_pool()
    published = pool.reserve(MIB)
    unpublished = pool.reserve(4096)
    assert published is not None and unpublished is not None
    expected, count = _fill(published, "float32", seed=6)
    desc = pool.publish(published.token, pa.Array.from_buffers(pa.float32(), count, [None, published.buffer]), {"r"})
    assert desc is not None
    out = reader.open(desc)
    writer_view = np.asarray(unpublished.owner)
    pool.close()
    pool.close()  # idempotent
    assert segment_files(dataflow_id) == []  # unlinked; the mappings stay while views do
    writer_view[:] = 42  # still mapped: writing and reading are safe
    assert writer_view.sum() == 42 * 4096
    assert np.asarray(published.owner)[: count * 4].view("float32").tobytes() == expected.tobytes()
    assert _bytes_of(out) == expected.tobytes()
    with pytest.raises(RuntimeError, match="closed"):
        pool.reserve(10)
    assert pool.publish(unpublished.token, pa.array(np.zeros(8, np.uint8)), {"r"}) is None
    del out, writer_view, published, unpublished
    gc.collect()  # the finalizers of the views run after the close: harmless
    assert pool.stats().segments == 0


def test_close_keeping_in_use_leaves_published_samples_readable(
    make_pool: Callable[..., SegmentPool], reader: SegmentReader, dataflow_id: str
) -> None:
    """A writer that exits leaves unreleased messages for its readers (the daemon removes them)."""
    pool = make_pool()
    res = pool.reserve(MIB)
    assert res is not None
    expected, count = _fill(res, "int64", seed=7)
    desc = pool.publish(res.token, pa.Array.from_buffers(pa.int64(), count, [None, res.buffer]), {"r"})
    assert desc is not None
    dropped = pool.reserve(4096)
    assert dropped is not None
    del dropped
    gc.collect()
    assert not pool.release(desc.token, "nobody")  # (any release applies the drop: now free)
    pool.close(keep_in_use=True)
    try:
        assert len(segment_files(dataflow_id)) == 1  # the published one; the free one is unlinked
        out = reader.open(desc)  # opened after the writer closed
        assert _bytes_of(out) == expected.tobytes()
        del out, res
        gc.collect()
    finally:
        cleanup_segments(dataflow_id)
    assert segment_files(dataflow_id) == []


def test_reserve_rejects_a_negative_size(pool: SegmentPool) -> None:
    with pytest.raises(ValueError, match="nbytes"):
        pool.reserve(-1)


def test_stream_frame_raises_when_the_prefix_does_not_fit() -> None:
    """A schema too big for the room before the data (huge field metadata) is refused."""
    field = pa.field("value", pa.uint8(), metadata={b"k": b"x" * SAMPLE_DATA_OFFSET})
    batch = pa.RecordBatch.from_arrays([pa.array([1], pa.uint8())], schema=pa.schema([field]))
    with pytest.raises(ProtocolError, match="does not fit"):
        stream_frame(batch)
