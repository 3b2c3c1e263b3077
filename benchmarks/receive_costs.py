"""Where a received message's CPU goes, stage by stage, against raw pyzmq's receiver (issue 16).

    python benchmarks/receive_costs.py [--sizes 16384,40960] [--messages 5000]

In one process, hot (a burst's regime, where throughput is decided): per size, the median µs
per message of

- ``recv``: ``recv_multipart(copy=False)`` of messages already queued on a SUB socket (ipc),
  for dora_zmq's four frames and raw pyzmq's three (``zmq_baseline``);
- ``decode``: dora_zmq's ``decode_frames`` (head, metadata JSON, flat Arrow rebuilt around the
  frame) against raw pyzmq's ``deserialize`` (the Arrow IPC stream read);
- ``event``: what the receiving thread adds per message (the ``timestamp`` metadata, the
  ``ReceivedEvent``, ``EventQueue.push_input`` under its lock with its byte accounting);
- ``next``: what ``node.next()`` does to hand it over (``EventQueue.get``, the hooks);

The metadata is the benchmark's (``kind``, ``size``, ``seq``, ``t``, ``n``). What is left out
on purpose: the thread switch between the receiving thread and ``next()`` (a burst keeps both
busy, so it is paid in wake-ups, not per message) and the socket's kernel copy on the sending
side. Prints a table; ``--json`` prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyarrow as pa  # noqa: E402
import zmq  # noqa: E402
import zmq_baseline  # noqa: E402

from dora_zmq._wire import TIMESTAMP_KEY, decode_frames, encode_data_frames, encode_topic, timestamp_of  # noqa: E402
from dora_zmq.node._events import EVENT_KIND, EventQueue, EventType, ReceivedEvent  # noqa: E402

_ROUNDS = 5  # medians over this many rounds of ``messages`` each


def _per_message(fn: Callable[[], None], messages: int) -> float:
    """µs per message of ``fn`` (which handles ``messages`` messages), median of the rounds."""
    out = []
    for _ in range(_ROUNDS):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / messages / 1000)
    return statistics.median(out)


def _recv_cost(frames: list[Any], messages: int, directory: str) -> float:
    """µs per ``recv_multipart(copy=False)`` of already queued messages over ipc."""
    ctx = zmq.Context(io_threads=1)
    pub, sub = ctx.socket(zmq.PUB), ctx.socket(zmq.SUB)
    for s in (pub, sub):
        s.setsockopt(zmq.SNDHWM, 0)
        s.setsockopt(zmq.RCVHWM, 0)
        s.setsockopt(zmq.LINGER, 0)
    endpoint = f"ipc://{directory}/recv-costs-{time.monotonic_ns()}.sock"
    pub.bind(endpoint)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(endpoint)
    while True:  # until the subscription has reached the publisher
        pub.send_multipart(frames)
        if sub.poll(50):
            sub.recv_multipart()
            while sub.poll(50):
                sub.recv_multipart()
            break
    costs = []
    try:
        for _ in range(_ROUNDS):
            for _ in range(messages):
                pub.send_multipart(frames, copy=False)
            # Let the I/O threads move everything to the receiving side (a tool, not a test:
            # a generous pause, so that only recv_multipart itself is timed).
            time.sleep(0.3 + messages * sum(len(f) for f in frames) / 5e8)
            t0 = time.perf_counter_ns()
            for _ in range(messages):
                sub.recv_multipart(copy=False)
            costs.append((time.perf_counter_ns() - t0) / messages / 1000)
    finally:
        pub.close(0)
        sub.close(0)
        ctx.term()
    return statistics.median(costs)


def measure(size: int, messages: int, directory: str) -> dict[str, dict[str, float]]:
    value = pa.array(bytes(size), type=pa.uint8())
    metadata = {"kind": 2, "size": size, "seq": 0, "t": 0, "n": 0}
    ours = [bytes(memoryview(f)) for f in encode_data_frames(encode_topic("sender", "throughput"), 1, value, metadata)]
    raw = [zmq_baseline.TOPIC, zmq_baseline.HEADER.pack(2, size, 0, 0, 0), zmq_baseline.serialize(value).to_pybytes()]
    ours_frames = [zmq.Frame(f) for f in ours]
    raw_body = zmq.Frame(raw[2])

    def decode_ours() -> None:
        for _ in range(messages):
            decode_frames(ours_frames)

    def decode_raw() -> None:
        for _ in range(messages):
            zmq_baseline.HEADER.unpack(raw[1])
            zmq_baseline.deserialize(raw_body.buffer)

    decoded = decode_frames(ours_frames)
    queue = EventQueue({"in": messages + 1})

    def event() -> None:
        for _ in range(messages):
            md = dict(decoded.metadata)  # (decode makes a new dict per message)
            md[TIMESTAMP_KEY] = timestamp_of(decoded.sent_ns)
            ev = ReceivedEvent(type=EventType.INPUT, id="in", kind=EVENT_KIND, value=decoded.value, metadata=md)
            ev.sent_ns, ev.received_ns, ev.seq = decoded.sent_ns, time.time_ns(), decoded.seq
            queue.push_input("in", ev)
        while queue.get() is not None:
            pass

    def push_only() -> None:
        for _ in range(messages):
            queue.push_input("in", ReceivedEvent(type=EventType.INPUT, id="in", kind=EVENT_KIND, value=decoded.value))

    def get_only() -> None:
        while queue.get() is not None:
            pass

    def next_() -> None:
        push_only()
        t0 = time.perf_counter_ns()
        get_only()
        next_times.append(time.perf_counter_ns() - t0)

    next_times: list[int] = []
    for _ in range(_ROUNDS):
        next_()
    next_us = statistics.median(next_times) / messages / 1000
    event_us = _per_message(event, messages) - next_us
    return {
        "dora_zmq": {
            "recv": _recv_cost(ours, messages, directory),
            "decode": _per_message(decode_ours, messages),
            "event": event_us,
            "next": next_us,
        },
        "raw pyzmq": {
            "recv": _recv_cost(raw, messages, directory),
            "decode": _per_message(decode_raw, messages),
            "event": 0.0,
            "next": 0.0,
        },
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="16384,40960")
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dzrecv-") as directory:
        results = {int(s): measure(int(s), args.messages, directory) for s in args.sizes.split(",")}
    if args.json:
        sys.stdout.write(json.dumps(results, indent=1) + "\n")
        return
    sys.stdout.write("| size | target | recv | decode | event | next | sum µs |\n")
    sys.stdout.write("| ---: | --- | ---: | ---: | ---: | ---: | ---: |\n")
    for size, per in results.items():
        for target, stages in per.items():
            cells = " | ".join(f"{v:.2f}" for v in stages.values())
            sys.stdout.write(f"| {size} | {target} | {cells} | {sum(stages.values()):.2f} |\n")


if __name__ == "__main__":
    main()
