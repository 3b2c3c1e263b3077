"""The head's send time is the sender's wall clock: recordings and several machines share one time line."""

from __future__ import annotations

import time

import pyarrow as pa

from dora_zmq._wire import decode_frames, encode_data_frames, encode_topic


def test_send_time_is_wall_clock_ns() -> None:
    before = time.time_ns()
    frames = encode_data_frames(encode_topic("cam", "image"), 7, pa.array([1, 2, 3]), {"k": 1})
    after = time.time_ns()
    msg = decode_frames(frames)
    assert before <= msg.sent_ns <= after and msg.seq == 7
