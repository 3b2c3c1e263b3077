"""Values whose Arrow layout lies about their buffers never reach an application, on the socket
path (``decode_frames``) or the shared-memory path (``SegmentReader.open``); and every decoder
failure is a ``ProtocolError``, whatever the library underneath raised.

Before validation on receive, each of these arrays was decoded and handed over; reading its
values then crashed the receiving process or read neighbouring heap memory.
"""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pytest
from hostile_arrays import invalid_arrays, list_child_longer_than_its_buffer

from dora_zmq._errors import ProtocolError
from dora_zmq._shm import SegmentPool, SegmentReader, ShmDescriptor, cleanup_segments, shm_dir
from dora_zmq._wire import (
    UnreadableValue,
    decode_frames,
    decode_metadata,
    decode_value,
    encode_data_frames,
    encode_topic,
)

TOPIC = encode_topic("forger", "data")
HOSTILE = invalid_arrays()


def _wire(frames: list[object]) -> list[bytes]:
    return [f.to_pybytes() if isinstance(f, pa.Buffer) else bytes(f) for f in frames]  # type: ignore[call-overload]


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_invalid_array_from_the_public_api_is_refused_on_receive(name: str) -> None:
    frames = _wire(encode_data_frames(TOPIC, 1, HOSTILE[name], None))  # the sender does not check
    with pytest.raises(ProtocolError, match="invalid Arrow"):
        decode_frames(frames)


def test_list_whose_child_length_exceeds_its_buffer_is_refused() -> None:
    frames = _wire(encode_data_frames(TOPIC, 1, pa.array([[1, 2, 3]], pa.list_(pa.int64())), None))
    frames[3] = list_child_longer_than_its_buffer(frames[3])
    with pytest.raises(ProtocolError, match="too small"):
        decode_frames(frames)


def test_a_full_ipc_stream_is_validated_too() -> None:
    # dictionary values travel as a whole IPC stream (empty schema frame)
    frames = _wire(encode_data_frames(TOPIC, 1, HOSTILE["dictionary_index"], None))
    assert frames[2] == b""
    with pytest.raises(ProtocolError, match="out of bounds"):
        decode_value(frames[3])


def test_valid_values_still_decode() -> None:
    for value in (pa.array(["a", None, "ccc"]), pa.array([[1], [], None]), pa.array([1, 2, 3])):
        assert decode_frames(_wire(encode_data_frames(TOPIC, 1, value, None))).value == value


@pytest.mark.parametrize(
    "metadata",
    [
        b'{"n":' + b"1" * 5000 + b"}",  # ValueError: beyond Python's 4,300-digit int limit
        b'{"a":' + b"[" * 200_000 + b"]" * 200_000 + b"}",  # RecursionError in json
        b"[" * 200_000,  # RecursionError on the slow path
    ],
    ids=["huge-int", "deep-nesting", "deep-unclosed"],
)
def test_metadata_decode_raises_only_protocol_error(metadata: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_metadata(metadata)


# -- shared memory --------------------------------------------------------------------------


@pytest.fixture
def pool_and_reader() -> Iterator[tuple[SegmentPool, SegmentReader, list[ShmDescriptor]]]:
    df = str(uuid.uuid4())
    released: list[ShmDescriptor] = []
    pool = SegmentPool(df, "forger")
    reader = SegmentReader(released.append)
    try:
        yield pool, reader, released
    finally:
        reader.close()
        pool.close()
        gc.collect()
        cleanup_segments(df)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_invalid_array_in_shared_memory_is_refused_and_released(
    pool_and_reader: tuple[SegmentPool, SegmentReader, list[ShmDescriptor]], name: str
) -> None:
    pool, reader, released = pool_and_reader
    desc = pool.write(invalid_arrays(data_size=128 * 1024)[name], {"r"})
    assert desc is not None
    with pytest.raises(ProtocolError, match="invalid Arrow"):
        reader.open(desc)
    gc.collect()
    assert released == [desc] and reader.live == 0  # refused, and its slot goes back
    good = pool.write(pa.array(["ok"] * 10), {"r"})
    assert good is not None and reader.open(good).to_pylist() == ["ok"] * 10


def test_a_schema_pyarrow_cannot_read_in_shared_memory_is_a_protocol_error(
    pool_and_reader: tuple[SegmentPool, SegmentReader, list[ShmDescriptor]],
) -> None:
    """A schema of an unknown type made ``open`` raise EOFError (pyarrow's other errors for
    such schemas: ArrowNotImplementedError), which killed the node's receiver thread."""
    pool, reader, released = pool_and_reader
    value = pa.array([1.5, None, 2.5], pa.float64())
    desc = pool.write(value, {"r"})
    assert desc is not None
    path = os.path.join(shm_dir(), desc.segment)
    with open(path, "r+b") as f:
        f.seek(desc.offset)
        stream = bytearray(f.read(desc.length))
        # the Type union tag of the one field: FloatingPoint (3) -> an id no Arrow knows (200)
        schema = pa.schema([("value", pa.float64())]).serialize().to_pybytes()
        assert stream.startswith(schema[:8])
        tag = _type_tag_offset(schema)
        stream[tag] = 200
        f.seek(desc.offset)
        f.write(stream)
    with pytest.raises(ProtocolError):
        reader.open(desc)
    gc.collect()
    assert released == [desc] and reader.live == 0


def _type_tag_offset(schema: bytes) -> int:
    """Where the schema message stores its field's type tag (found by changing the type)."""
    other = pa.schema([("value", pa.int64())]).serialize().to_pybytes()
    diffs = [i for i, (a, b) in enumerate(zip(schema, other)) if a != b]
    assert diffs, "the two schemas do not differ"
    return diffs[0]


# -- compressed bodies: a few KiB of zstd that would inflate into megabytes ------------------


def _compressed_stream(value: pa.Array) -> bytes:
    sink = pa.BufferOutputStream()
    batch = pa.RecordBatch.from_arrays([value], ["value"])
    with pa.ipc.new_stream(sink, batch.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as w:
        w.write_batch(batch)
    return sink.getvalue().to_pybytes()


_BOMB = pa.array(np.zeros(4 * 1024 * 1024, dtype=np.int64))  # 32 MiB of zeros


def test_a_compressed_record_batch_is_refused_before_it_is_inflated() -> None:
    stream = _compressed_stream(_BOMB)
    assert len(stream) < 64 * 1024
    frames = _wire(encode_data_frames(TOPIC, 1, pa.array(["x"]), None))
    reader = pa.ipc.open_stream(stream)
    reader.read_next_batch()
    # the bare record batch message, as a DATA body: the stream minus its schema message
    schema_len = len(pa.ipc.read_message(stream).serialize())
    frames[2] = pa.schema([("value", pa.int64())]).serialize().to_pybytes()
    frames[3] = stream[schema_len:]
    with pytest.raises(ProtocolError, match="compressed"):
        decode_frames(frames)
    with pytest.raises(ProtocolError, match="compressed"):
        decode_value(stream)  # a whole stream (the dictionary path)


def test_a_compressed_stream_in_shared_memory_is_refused(
    pool_and_reader: tuple[SegmentPool, SegmentReader, list[ShmDescriptor]],
) -> None:
    pool, reader, released = pool_and_reader
    desc = pool.write(pa.array(np.arange(64 * 1024, dtype=np.int64)), {"r"})
    assert desc is not None
    stream = _compressed_stream(_BOMB)
    assert len(stream) <= desc.length
    with open(os.path.join(shm_dir(), desc.segment), "r+b") as f:
        f.seek(desc.offset)
        f.write(stream + bytes(desc.length - len(stream)))  # the header still matches
    with pytest.raises(ProtocolError, match="compressed"):
        reader.open(desc)
    gc.collect()
    assert released == [desc] and reader.live == 0


def test_uncompressed_dictionary_streams_still_decode() -> None:
    value = pa.array(["a", "b", "a"]).dictionary_encode()
    frames = _wire(encode_data_frames(TOPIC, 1, value, None))
    assert decode_frames(frames).value == value


def test_an_unreadable_value_carries_its_sequence_number() -> None:
    """So the receiver counts it as dropped, not also as lost in transit."""
    frames = _wire(encode_data_frames(TOPIC, 41, HOSTILE["string_offsets"], None))
    with pytest.raises(UnreadableValue) as info:
        decode_frames(frames)
    assert info.value.seq == 41 and isinstance(info.value, ProtocolError)
