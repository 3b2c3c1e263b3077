"""What tracing adds per hop, stage by stage, in one process: hot, and with cold caches.

``python -m tests.tracing.stage_costs [messages]`` prints the median µs of each stage of a
traced hop that the message waits for: the sender's ``on_send`` (and the size it is given),
the metadata's extra JSON bytes (the trace context) encoded and decoded, and the receiver's
``on_event`` (ending the last input's span, starting this one's; given the event a node hands it).
Hot: back to back. Cold:
8 MB are written before each stage, which evicts the caches as the other processes of a busy
machine do between paced messages (5 ms apart): the end-to-end figure of ``--variant
tracing`` lies near the cold sum. Then the CPU time per hop of a traced burst, both nodes'
tracing and the OTLP encoding of their spans included (``process_time``: every thread).

Then the same for :class:`FloorTracing`, the least a traced hop can do in Python (ids made
ahead, spans as tuples, the context as bytes of its own): the floor the tracing target is
measured against. Spans go to a counting collector in this process. A measurement tool, not a test: the figures
depend on the machine (see the report of issue 16 for this VM's).
"""

from __future__ import annotations

import collections
import contextvars
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from dora_zmq._wire import decode_metadata, encode_metadata
from dora_zmq.node._events import ReceivedEvent
from dora_zmq.otlp_receiver import OtlpReceiver
from dora_zmq.tracing import NodeTracing

_THRASH = bytearray(8 * 1024 * 1024)  # larger than this VM's last-level cache
_TEXT_KEY = "open_telemetry_context"
STAGES = ("size", "on_send", "encode+", "decode+", "on_event")


def _thrash() -> None:
    _THRASH[::64] = bytes(len(_THRASH) // 64)  # one write per cache line


def stage_costs(endpoint: str, messages: int, cold: bool, floor: bool = False) -> dict[str, float]:
    """Median µs per stage over ``messages`` traced hops (see the module); ``floor``: of
    :class:`FloorTracing`, whose trace context travels as bytes of its own (no JSON)."""
    sender, receiver = (_floor_nodes if floor else _nodes)(endpoint)
    value = pa.array(bytes(8), pa.uint8())
    samples: dict[str, list[int]] = {stage: [] for stage in STAGES}
    # Each node's context variable apart, as in two processes (a current span of the sender's
    # would make the receiver merge contexts).
    receiver_context = contextvars.Context()
    clock = time.perf_counter_ns
    evict: Callable[[], None] = _thrash if cold else (lambda: None)
    try:
        for seq in range(messages):
            # The sender is a source, as the benchmark's in its latency phase: no input handled,
            # each message starts a trace.
            metadata = {"kind": 1, "size": 8, "seq": seq, "t": 0, "n": 0}
            evict()
            t0 = clock()
            size = value.get_total_buffer_size()  # what Node.send_output computes for on_send
            t1 = clock()
            evict()
            t2 = clock()
            traced = sender.on_send("latency", metadata, size)
            t3 = clock()
            if floor:  # the context as a frame of its own: encoded and decoded alone
                raw = _timed(evict, clock, str.encode, traced[_TEXT_KEY])
                text = _timed(evict, clock, bytes.decode, raw[0])
                plain, plain_got = (b"", 0), (None, 0)
                got = (dict(metadata, **{_TEXT_KEY: text[0]}), text[1])
            else:
                raw = _timed(evict, clock, encode_metadata, traced)
                plain = _timed(evict, clock, encode_metadata, metadata)
                got, plain_got = (
                    _timed(evict, clock, decode_metadata, raw[0]),
                    _timed(evict, clock, decode_metadata, plain[0]),
                )
            event = ReceivedEvent(type="INPUT", id="latency", kind="dora", value=value, metadata=got[0])
            on_event = receiver_context.run(_timed, evict, clock, receiver.on_event, event)
            samples["size"].append(t1 - t0)
            samples["on_send"].append(t3 - t2)
            samples["encode+"].append(raw[1] - plain[1])
            samples["decode+"].append(got[1] - plain_got[1])
            samples["on_event"].append(on_event[1])
    finally:
        sender.close()
        receiver_context.run(receiver.close)  # (its context variable is that context's)
    return {stage: statistics.median(values) / 1000 for stage, values in samples.items()}


class FloorTracing:
    """The least a traced hop can do in Python: the floor that ``NodeTracing`` is measured against.

    What any implementation must do per message, with everything that can be made ahead made
    ahead (as ``_LeanSpans`` makes span ids and their hex text ahead): the sender pops an id,
    writes the child's traceparent text and queues its span as a tuple; the receiver reads the
    text, ends the last input's span and starts this one's as a tuple. No SDK objects, no
    context variable (so user code could not see the current span: less than a real tracer
    must do), no export (a thread would do it later, as ours does).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.waiting: collections.deque[tuple[Any, ...]] = collections.deque(maxlen=16384)
        self.ids = [(i, f"{i:016x}") for i in random.sample(range(1, 1 << 62), 8192)]
        self.prefix = f"traceparent:00-{random.getrandbits(128):032x}-"
        self.current: tuple[Any, ...] | None = None

    def on_send(self, output_id: str, metadata: dict[str, Any] | None, size: int) -> dict[str, Any]:
        start = time.time_ns()
        span_id, hex_id = self.ids.pop()
        text = self.prefix + hex_id + "-01"
        self.waiting.append((output_id, start, time.time_ns(), span_id, size))
        out = dict(metadata) if metadata else {}
        out[_TEXT_KEY] = text
        return out

    def on_event(self, event: dict[str, Any]) -> None:
        now = time.time_ns()
        if self.current is not None:
            self.waiting.append((*self.current, now))
        metadata = event["metadata"]
        self.current = (event["id"], now, self.ids.pop()[0], metadata.get(_TEXT_KEY) if metadata else None)

    def close(self) -> None:
        self.waiting.clear()


def _floor_nodes(endpoint: str) -> tuple[Any, Any]:
    return FloorTracing("sender"), FloorTracing("receiver")


def _nodes(endpoint: str) -> tuple[NodeTracing, NodeTracing]:
    """A sender's and a receiver's tracing, each with its provider as ``setup_tracing`` makes it
    (one batch processor around the OTLP/HTTP exporter), exporting to ``endpoint``."""
    nodes = []
    for name in ("sender", "receiver"):
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", timeout=2)))
        nodes.append(NodeTracing(provider, name, "df", "m"))
    return nodes[0], nodes[1]


def _timed(evict: Callable[[], None], clock: Callable[[], int], fn: Callable[[Any], Any], arg: Any) -> tuple[Any, int]:
    evict()
    t0 = clock()
    out = fn(arg)
    return out, clock() - t0


def burst_cpu_per_hop(endpoint: str, messages: int) -> float:
    """CPU µs per traced hop in a burst: on_send + on_event + their spans' export (all threads)."""
    sender, receiver = _nodes(endpoint)
    value = pa.array(bytes(8), pa.uint8())
    metadata = {"kind": 2, "size": 8, "seq": 0, "t": 0, "n": 0}
    receiver_context = contextvars.Context()  # (see stage_costs)
    start = time.process_time()
    for _ in range(messages):
        traced = sender.on_send("throughput", metadata, 8)
        event = ReceivedEvent(type="INPUT", id="throughput", kind="dora", value=value, metadata=traced)
        receiver_context.run(receiver.on_event, event)
    sender.close()  # every span encoded and sent
    receiver_context.run(receiver.close)
    return (time.process_time() - start) / messages * 1e6


def main(argv: list[str]) -> None:
    messages = int(argv[0]) if argv else 3000
    with OtlpReceiver(decode=False) as sink:
        for floor in (False, True):
            for cold in (False, True):
                costs = stage_costs(sink.endpoint, messages, cold, floor)
                parts = "  ".join(f"{stage} {us:5.2f}" for stage, us in costs.items())
                what = f"{'floor ' if floor else ''}{'cold' if cold else 'hot'}"
                sys.stdout.write(f"{what:>10} µs: {parts}  sum {sum(costs.values()):5.2f}\n")
        sys.stdout.write(
            f"burst: {burst_cpu_per_hop(sink.endpoint, messages * 5):.2f} µs CPU per hop (export included)\n"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
