"""The schema caches of the socket path are bounded: a peer sending ever new types cannot grow them."""

from __future__ import annotations

import pyarrow as pa

from dora_zmq._wire import BatchDecoder, decode_frames, encode_data_frames, encode_topic
from dora_zmq._wire import _arrow


def _distinct_types(count: int) -> list[pa.DataType]:
    # lists of fixed_size_binary(n), one type per n: not flat, so they travel as schema + record batch
    return [pa.list_(pa.binary(n)) for n in range(1, count + 1)]


def test_encoder_schema_cache_is_bounded_and_still_encodes() -> None:
    limit = _arrow._SCHEMA_CACHE_LIMIT
    topic = encode_topic("n", "o")
    decoder = BatchDecoder()
    for t in _distinct_types(limit + 10):
        value = pa.array([[b"x" * t.value_type.byte_width]], type=t)
        message = decode_frames(encode_data_frames(topic, 1, value, None), decoder)
        assert message.value is not None and message.value.equals(value)
        assert len(_arrow._SCHEMAS) <= limit
        assert len(decoder._schemas) <= limit
    assert len(decoder._schemas) == 10  # it started afresh once full, then kept the newest


def test_dictionary_types_are_cached_as_whole_streams() -> None:
    value = pa.array(["a", "b", "a"]).dictionary_encode()
    topic = encode_topic("n", "o")
    first = encode_data_frames(topic, 1, value, None)
    assert first[2] == b""  # no bare schema: the body is a whole IPC stream
    assert _arrow._SCHEMAS.get(value.type, ()) is None
    message = decode_frames(encode_data_frames(topic, 2, value, None))
    assert message.value is not None and message.value.equals(value)
