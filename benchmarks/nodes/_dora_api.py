"""Links between the benchmark protocol (``common.py``) and a dora-style ``Node``.

The same node scripts serve dora_zmq and dora-rs: ``BENCH_API=dora`` imports ``dora.Node``
(run under a dora-rs virtualenv), anything else ``dora_zmq.Node``. Both APIs have the same
shape: ``next(timeout)``, event dicts, ``send_output(output, pyarrow.Array, metadata)``.

Alternating tracing (``ALTERNATE_ENV``) turns a dora_zmq node's tracing off and on per message
through its private ``_tracing`` attribute (the per-node tracer that ``next`` and ``send_output``
call; None is what a node without ``OTEL_*`` has): no public API sends one message untraced while
tracing is configured. See :class:`TracingSwitch`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/ for common

from common import (
    API_ENV,
    TRACED,
    ZERO_COPY_ENV,
    Kind,
    LinkClosed,
    Msg,
    alternating,
    marker_value,
)

#: metadata keys of the protocol (relays forward exactly these; dora-rs may add others)
KEYS = ("kind", "size", "seq", "t", "n")
_OTEL_KEY = "open_telemetry_context"
# Below it (DORA_ZMQ_SHM_THRESHOLD) a sample would be ordinary memory: send the value as usual.
_SHM_THRESHOLD = int(os.environ.get("DORA_ZMQ_SHM_THRESHOLD", 64 * 1024)) or 1 << 62

_OUTPUT = {
    Kind.SYNC: "latency",
    Kind.LAT: "latency",
    Kind.LAT_END: "latency",
    Kind.DONE: "latency",
    Kind.THR: "throughput",
    Kind.THR_END: "throughput",
}


def make_node() -> Any:
    """A ``Node`` of the API chosen by ``BENCH_API``."""
    if os.environ.get(API_ENV) == "dora":
        from dora import Node
    else:
        from dora_zmq import Node
    return Node()


def protocol_metadata(md: dict[str, Any]) -> dict[str, Any]:
    """The protocol part of an event's metadata (and its trace context, if any)."""
    out = {k: md[k] for k in KEYS}
    if _OTEL_KEY in md:
        out[_OTEL_KEY] = md[_OTEL_KEY]
    return out


class TracingSwitch:
    """Tracing of a dora_zmq node on or off per message, for alternating tracing.

    The sender sets the class of each latency message before sending it. A receiver (or relay)
    must choose before ``next()`` returns the message, so it guesses: the latency phase
    alternates, so the next message is of the other class than the last one, and the first one
    (and everything outside the latency phase) is traced. A wrong guess (a lost message) is
    reported by :meth:`matched` and the guess follows the messages again from there.
    """

    def __init__(self, node: Any) -> None:
        tracing = getattr(node, "_tracing", None)
        if tracing is None:
            raise RuntimeError(
                "alternating tracing needs a dora_zmq node with tracing configured (OTEL_* set): "
                "the node has no tracer (_tracing)"
            )
        self._node = node
        self._tracing = tracing
        self.expect = True  # the class of the next message (True: traced)
        self.on = True

    def set(self, on: bool) -> None:
        """Tracing on (the node's tracer) or off (None, as a node without OTEL_* has)."""
        self._node._tracing = self._tracing if on else None
        self.on = on

    def before_next(self) -> None:
        """Tracing as the class of the message ``next()`` is expected to return."""
        if self.on != self.expect:
            self.set(self.expect)

    def matched(self, metadata: dict[str, Any]) -> bool:
        """Whether a message came as its class says (trace context or none) and was received so.

        Also guesses the class of the next one.
        """
        if metadata.get("kind") != Kind.LAT:
            self.expect = True
            return True
        traced = bool(metadata["n"] & TRACED)
        self.expect = not traced
        return traced == self.on == (_OTEL_KEY in metadata)


def _next(node: Any, timeout_s: float | None) -> dict[str, Any] | None:
    """The next event; None on timeout. LinkClosed when the stream ended or STOP came.

    dora_zmq returns None both on timeout and at the end of the stream; dora-rs returns an
    ERROR event on timeout. An early None (well before the timeout) means the end.
    """
    start = time.monotonic()
    ev = node.next() if timeout_s is None else node.next(timeout=timeout_s)
    if ev is None:
        if timeout_s is None or time.monotonic() - start < timeout_s / 2:
            raise LinkClosed("event stream ended")
        return None
    if ev["type"] == "STOP":
        raise LinkClosed("STOP")
    return ev


class DoraSender:
    """Sends on the ``latency``/``throughput`` outputs; acks come on the ``ack`` input."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.zero_copy = os.environ.get(ZERO_COPY_ENV) == "1" and os.environ.get(API_ENV) != "dora"
        self.switch = TracingSwitch(node) if alternating() else None

    def trace(self, on: bool) -> None:
        if self.switch is not None:
            self.switch.set(on)

    def produce(self, kind: int, value: Any) -> Any:
        """In zero-copy mode, the payload written into a shared-memory output sample.

        A sample in ordinary memory (below the shared-memory threshold) would only add a
        copy: the value itself is sent then, as in the default mode.
        """
        if not self.zero_copy or len(value) < _SHM_THRESHOLD:
            return value
        sample = self.node.allocate_output(_OUTPUT[kind], len(value))
        if not sample.shared:
            return value
        import numpy as np

        np.copyto(sample.numpy(), value.to_numpy(zero_copy_only=True))
        return sample

    def send(self, kind: int, size: int, seq: int, t: int, n: int, value: Any) -> None:
        self.node.send_output(_OUTPUT[kind], value, {"kind": kind, "size": size, "seq": seq, "t": t, "n": n})

    def poll_ack(self, timeout_s: float) -> int | None:
        ev = _next(self.node, timeout_s)
        if ev is not None and ev["type"] == "INPUT" and ev["id"] == "ack":
            return int(ev["metadata"]["size"])
        return None


class DoraReceiver:
    """Receives on the ``latency``/``throughput`` inputs; acks on the ``ack`` output."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.mark = marker_value()
        self.switch = TracingSwitch(node) if alternating() else None

    def recv(self) -> Msg | None:
        switch = self.switch
        while True:
            if switch is not None:
                switch.before_next()
            try:
                ev = _next(self.node, None)
            except LinkClosed:
                return None
            if ev is not None and ev["type"] == "INPUT":
                rows = len(ev["value"])
                now = time.perf_counter_ns()
                md = ev["metadata"]
                valid = switch.matched(md) if switch is not None else True
                return Msg(md["kind"], md["size"], md["seq"], md["t"], md["n"], rows, now, valid)

    def ack(self, size: int) -> None:
        self.node.send_output("ack", self.mark, {"size": size})
