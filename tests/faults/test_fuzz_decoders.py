"""Fuzzing every decoder that reads bytes from a peer or a user: frames, control messages,
shared-memory descriptors and segments, dataflow YAML.

Each decoder promises one exception type (``ProtocolError``; ``DescriptorErrors`` for YAML).
Inputs start from what the current encoders write and are mutated (bytes flipped, cut,
spliced, frames swapped), plus free-form bytes; a decoded value must then be safe to read in
full. Deterministic (``derandomize``) with a fixed budget, so CI runs the same cases every
time in a few seconds; each example has a deadline, and the whole run a memory ceiling.
"""

from __future__ import annotations

import gc
import json
import os
import random
import resource
import uuid
from collections.abc import Iterator

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dora_zmq import _control as ctl
from dora_zmq._wire import reject_compressed
from dora_zmq._errors import DescriptorErrors, ProtocolError
from dora_zmq._shm import SegmentPool, SegmentReader, ShmDescriptor, cleanup_segments, shm_dir
from dora_zmq._wire import (
    MessageKind,
    decode_frames,
    encode_control_frames,
    encode_data_frames,
    encode_shm_frames,
    encode_topic,
)
from dora_zmq.descriptor import parse_dataflow

pytestmark = pytest.mark.timeout(120)

FUZZ = settings(
    max_examples=300,
    deadline=2000,  # ms per example: a decoder that loops or expands shows here
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TOPIC = encode_topic("src", "out")


def _wire(frames: list[object]) -> list[bytes]:
    return [f.to_pybytes() if isinstance(f, pa.Buffer) else bytes(f) for f in frames]  # type: ignore[call-overload]


_VALUES = [
    pa.array([1, 2, 3], pa.int64()),  # FLAT
    pa.array([1.5, None, 3.0]),
    pa.array(["a", None, "ccc", ""]),
    pa.array([[1, 2], [], None, [3]], pa.list_(pa.int32())),
    pa.array([{"x": 1, "y": "a"}, {"x": None, "y": None}]),
    pa.array(["a", "b", "a"]).dictionary_encode(),  # a whole IPC stream
    pa.array([b"\x00\xff", None], pa.binary()),
    pa.array([True, None, False]),
    pa.array([1, 2], pa.large_list(pa.int8()).value_type).cast(pa.int8()),
]
SEEDS = [
    *[
        _wire(encode_data_frames(TOPIC, i, v, {"k": [1, "two"], "open_telemetry_context": "traceparent:00-x"}))
        for i, v in enumerate(_VALUES)
    ],
    _wire(encode_control_frames(TOPIC, MessageKind.EOS, 7, {"stop": "MANUAL"})),
    _wire(encode_control_frames(TOPIC, MessageKind.FAILED, 8, {"error": "boom"})),
    _wire(encode_shm_frames(TOPIC, 9, ShmDescriptor("dora-zmq-x_000000-src-1-0", 64, 100, 1, 1).encode(), None)),
]


def _mutate(data: bytes, draw: st.DrawFn) -> bytes:
    """One of: flip bytes, cut, splice random bytes in, repeat a slice, or replace it all."""
    how = draw(st.sampled_from(["flip", "cut", "splice", "repeat", "replace"]))
    n = len(data)
    if how == "replace" or n == 0:
        return draw(st.binary(max_size=256))
    if how == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            out[draw(st.integers(0, n - 1))] = draw(st.integers(0, 255))
        return bytes(out)
    at = draw(st.integers(0, n))
    if how == "cut":
        return data[:at] + data[min(n, at + draw(st.integers(1, 64))) :]
    if how == "splice":
        return data[:at] + draw(st.binary(min_size=1, max_size=32)) + data[at:]
    return data[:at] + data[at:] * draw(st.integers(2, 4))


@st.composite
def _mutated_frames(draw: st.DrawFn) -> list[bytes]:
    frames = list(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["field", "field", "field", "swap", "count"]))
        if not frames:
            break
        if what == "field":
            i = draw(st.integers(0, len(frames) - 1))
            frames[i] = _mutate(frames[i], draw)
        elif what == "swap":
            other = draw(st.sampled_from(SEEDS))
            i = draw(st.integers(0, min(len(frames), len(other)) - 1))
            frames[i] = other[i]
        else:
            frames = frames[: draw(st.integers(0, 5))] + [b""] * draw(st.integers(0, 2))
    return frames


def _read_fully(value: pa.Array) -> None:
    """Touch every value: a decoded array must be safe to read end to end."""
    value.validate(full=True)
    value.to_pylist()


@pytest.fixture(scope="module", autouse=True)
def _memory_ceiling() -> Iterator[None]:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 512, f"fuzzing grew the peak memory by {grown_mib:.0f} MiB"


@FUZZ
@given(_mutated_frames())
def test_decode_frames_raises_only_protocol_error(frames: list[bytes]) -> None:
    _decode_and_read(frames)


@FUZZ
@given(st.lists(st.binary(max_size=300), min_size=4, max_size=4))
def test_decode_frames_of_random_bytes(frames: list[bytes]) -> None:
    frames[1] = b"DZ\x02" + frames[1]  # past the magic and version, else nothing is exercised
    _decode_and_read(frames)


def _decode_and_read(frames: list[bytes]) -> None:
    try:
        msg = decode_frames(frames)
    except ProtocolError:
        return
    if msg.value is not None:
        _read_fully(msg.value)


_STREAMS = [bytes(f[3]) for f in SEEDS if f[2] == b""] + [f[2] + f[3] for f in SEEDS if f[2]]


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=400),
        st.sampled_from(_STREAMS).flatmap(lambda d: st.composite(lambda draw: _mutate(d, draw))()),
    )
)
def test_the_compression_walk_raises_only_protocol_error(raw: bytes) -> None:
    """The hand-written flatbuffer walk before pyarrow: bounds on every offset."""
    for data in (raw, memoryview(raw), pa.py_buffer(raw)):
        try:
            reject_compressed(data)
        except ProtocolError:
            pass


_CONTROL = [
    ctl.encode(m)
    for m in (
        ctl.Peers("df", {"a": ctl.NodeEndpoint("m", "ipc:///x", "tcp://h:1")}, ["b"]),
        ctl.NodeExited("df", "n", None, 9, True, "killed", "tail", "m"),
        ctl.DataflowResult(
            "df", "name", False, [ctl.FailureRecord("n", 1, None, "t", "r", "m")], True, {"n/i": 3}, None
        ),
        ctl.StartDataflow("nodes: []", "/x.yml", "/", None, True),
        ctl.RegisterDaemon("cam", "0.1.0", ctl.PROTOCOL_VERSION, "host", 12, ["ipc:///d", "tcp://h:2"]),
        ctl.StopNodes("df", 2.0, "MANUAL", ""),
    )
]
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def _control_bytes(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["mutated", "fields", "deep", "bigint"]))
    if kind == "mutated":
        return _mutate(draw(st.sampled_from(_CONTROL)), draw)
    if kind == "fields":  # a real message with one field's value replaced by any JSON
        body = json.loads(draw(st.sampled_from(_CONTROL)))
        key = draw(st.sampled_from(sorted(body)))
        body[key] = draw(_JSON)
        return json.dumps(body).encode()
    if kind == "deep":
        depth = draw(st.integers(500, 100_000))
        return b'{"t":"Peers","dataflow_id":' + b"[" * depth + b"]" * depth + b"}"
    return b'{"t":"StopNodes","dataflow_id":"d","grace_s":' + b"9" * draw(st.integers(4000, 20_000)) + b"}"


@FUZZ
@given(_control_bytes())
def test_control_decode_raises_only_protocol_error(raw: bytes) -> None:
    try:
        msg = ctl.decode(raw)
    except ProtocolError:
        return
    assert type(msg).__module__.startswith("dora_zmq._control")


_DESCRIPTOR = ShmDescriptor("dora-zmq-x_000000-src-1-0", 64, 100, 1, 1).encode()


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=200),
        st.builds(lambda: _DESCRIPTOR).flatmap(lambda d: st.composite(lambda draw: _mutate(d, draw))()),
    )
)
def test_shm_descriptor_decode_raises_only_protocol_error(raw: bytes) -> None:
    for decode in (ShmDescriptor.decode, ShmDescriptor.decode_all):
        try:
            decode(raw)
        except ProtocolError:
            pass


_YAML = """\
nodes:
  - id: camera
    path: dynamic
    args: --fps 20 "--name=a b"
    env: {WIDTH: 640, RATIO: 1.50, ON: true}
    inputs:
      tick: dora/timer/millis/50
    outputs: [image]
    deploy: {machine: cam}
  - id: detector
    operator:
      python: detector.py
      inputs: {image: camera/image}
      outputs: [bbox]
  - id: sink
    path: dynamic
    inputs:
      bbox: {source: detector/bbox, queue_size: 1}
      raw: &src camera/image
      again: *src
"""
_YAML_BITS = ["&a ", "*a", "<<: ", "[", "]", "{", "}", "\n  ", ": ", "- ", '"\\0"', "\t", "!!python/object ", "~", "'"]


@st.composite
def _yaml_text(draw: st.DrawFn) -> str:
    text = _YAML
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        how = draw(st.sampled_from(["insert", "cut", "char"]))
        if how == "insert":
            text = text[:at] + draw(st.sampled_from(_YAML_BITS)) + text[at:]
        elif how == "cut":
            text = text[:at] + text[at + draw(st.integers(1, 20)) :]
        else:
            text = text[:at] + draw(st.characters()) + text[at:]
    return text


@FUZZ
@given(_yaml_text())
def test_descriptor_parse_raises_only_descriptor_errors(text: str) -> None:
    try:
        parse_dataflow(text, check_paths=False)
    except DescriptorErrors:
        pass


def test_shm_segment_bodies_mutated_in_place() -> None:
    """A seeded mutation loop over real segments: the writer is a peer too (bytes in place of
    a frame). 300 rounds: write a value, corrupt its stream in the segment, open it."""
    df = str(uuid.uuid4())
    rng = random.Random(12)
    released: list[ShmDescriptor] = []
    pool = SegmentPool(df, "src")
    reader = SegmentReader(released.append)
    opened = refused = 0
    try:
        for round_ in range(300):
            value = _VALUES[round_ % len(_VALUES)]
            desc = pool.write(value, {"r"})
            assert desc is not None
            with open(os.path.join(shm_dir(), desc.segment), "r+b") as f:
                f.seek(desc.offset)
                stream = bytearray(f.read(desc.length))
                for _ in range(rng.randint(1, 6)):
                    stream[rng.randrange(len(stream))] = rng.randrange(256)
                f.seek(desc.offset)
                f.write(stream)
            try:
                got = reader.open(desc)
            except ProtocolError:
                refused += 1
            else:
                opened += 1
                _read_fully(got)
                del got  # the last reference: released now, no garbage collection needed
            for d in released:
                pool.release(d.token, "r")
            released.clear()
        assert refused > 50 and reader.live == 0, (opened, refused)
    finally:
        reader.close()
        pool.close()
        gc.collect()
        cleanup_segments(df)
