"""The node script of every scale graph (``scale.py``), for dora_zmq, dora-rs and raw ZeroMQ.

One script, the role chosen by ``SCALE_ROLE`` (set per node in the generated YAML, or by
``--role`` for the raw ZeroMQ processes of the fan-out and of the start-up floor):

- ``tick-source`` / ``sink`` (start-up, memory): the source sends a small tick every 10 ms until
  the orchestrator creates ``quiet`` in ``SCALE_DIR`` (every sink has had its first message),
  then idles until STOP; each sink receives until STOP.
- ``fan-sender`` / ``fan-receiver`` (fan-out): the protocol of ``common.py`` (sync, paced
  latency messages, one burst per size, each bracket acked by *every* receiver); each receiver
  writes the arrival of every latency message and its burst counts to ``<id>.json``.
- ``soak-source`` / ``relay`` / ``soak-sink`` (soak): a steady rate for ``SCALE_SECONDS``, then
  DONE (re-sent until the sink acks it); the sink checks sequence numbers and writes ``sink.json``.

Every node appends ``<id> <event> <perf_counter_ns> <pid>`` lines to ``SCALE_DIR/events.log``
(``start`` before any import, ``node`` once ``Node()`` returned, ``first`` at its first message,
``stop`` when STOP came): one ``os.write`` of a short line on an ``O_APPEND`` file, whole lines.
Clocks: ``perf_counter_ns`` is CLOCK_MONOTONIC, one clock for every process of the host.
"""

from __future__ import annotations

import time

T_START = time.perf_counter_ns()  # before any import: the interpreter's start-up is in "start"

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "nodes")]

ROLE_ENV, ID_ENV, DIR_ENV = "SCALE_ROLE", "SCALE_ID", "SCALE_DIR"
FAN_ENV = "SCALE_FAN"  # number of receivers of the fan-out
SOAK_ENV = "SCALE_SOAK"  # JSON: rate, seconds, size
QUIET_FILE = "quiet"
TICK_S = 0.01
_RESEND_S = 0.5
_LAT_KEEP_EVERY = 50  # soak: keep every 50th latency sample (a sink's memory must stay flat)


class Events:
    """The append-only event log shared by every node of a run."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.fd = os.open(Path(os.environ[DIR_ENV]) / "events.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def log(self, event: str, t: int | None = None) -> None:
        os.write(self.fd, f"{self.node_id} {event} {t or time.perf_counter_ns()} {os.getpid()}\n".encode())


def _dora_next(node: Any, timeout_s: float | None) -> dict[str, Any] | None:
    """The next event, None on timeout; ``LinkClosed`` at STOP or the end of the stream."""
    from _dora_api import _next

    return _next(node, timeout_s)


# ---- start-up and memory -----------------------------------------------------------------


def tick_source(node: Any, ev: Events, value: Any) -> None:
    from common import LinkClosed

    quiet = Path(os.environ[DIR_ENV]) / QUIET_FILE
    first = True
    try:
        while True:
            if not quiet.exists():
                node.send_output("tick", value, {"t": time.perf_counter_ns()})
                if first:
                    ev.log("first")
                    first = False
            _dora_next(node, TICK_S)
    except LinkClosed:
        ev.log("stop")


def sink(node: Any, ev: Events) -> None:
    first = True
    while True:
        event = node.next()
        if event is None:
            break
        if event["type"] == "STOP":
            ev.log("stop")
            break
        if first and event["type"] == "INPUT":
            ev.log("first")
            first = False


# ---- fan-out -----------------------------------------------------------------------------


class DoraFanSender:
    """Sends on ``data``; acks come on inputs ``ack<i>``, one per receiver."""

    def __init__(self, node: Any) -> None:
        self.node = node

    def send(self, kind: int, size: int, seq: int, t: int, n: int, value: Any) -> None:
        self.node.send_output("data", value, {"kind": kind, "size": size, "seq": seq, "t": t, "n": n})

    def poll_ack(self, timeout_s: float) -> tuple[int, int, int] | None:
        """``(kind, size, receiver)`` of the next ack, or None."""
        e = _dora_next(self.node, timeout_s)
        if e is None or e["type"] != "INPUT":
            return None
        md = e["metadata"]
        return int(md["kind"]), int(md["size"]), int(md["r"])


class DoraFanReceiver:
    def __init__(self, node: Any, index: int) -> None:
        from common import marker_value

        self.node, self.index, self.mark = node, index, marker_value()

    def recv(self) -> tuple[int, int, int, int, int, int] | None:
        """``(kind, size, seq, t, n, now)``, or None at the end."""
        from common import LinkClosed

        while True:
            try:
                e = _dora_next(self.node, None)
            except LinkClosed:
                return None
            if e is not None and e["type"] == "INPUT":
                now = time.perf_counter_ns()
                md = e["metadata"]
                return md["kind"], md["size"], md["seq"], md["t"], md["n"], now

    def ack(self, kind: int, size: int) -> None:
        self.node.send_output("ack", self.mark, {"kind": kind, "size": size, "r": self.index})


class ZmqFanSender:
    """One PUB (bound) to every receiver's SUB; acks over PULL."""

    def __init__(self, data: str, ctrl: str) -> None:
        import zmq
        from zmq_baseline import _socket

        self.ctx = zmq.Context(io_threads=1)
        self.pub = _socket(self.ctx, zmq.PUB)
        self.pub.bind(data)
        self.pull = _socket(self.ctx, zmq.PULL)
        self.pull.bind(ctrl)

    def send(self, kind: int, size: int, seq: int, t: int, n: int, value: Any) -> None:
        from zmq_baseline import HEADER, TOPIC, serialize

        self.pub.send_multipart([TOPIC, HEADER.pack(kind, size, seq, t, n), serialize(value)], copy=False)

    def poll_ack(self, timeout_s: float) -> tuple[int, int, int] | None:
        if not self.pull.poll(max(1, int(timeout_s * 1000))):
            return None
        kind, size, r = json.loads(self.pull.recv())
        return kind, size, r


class ZmqFanReceiver:
    def __init__(self, data: str, ctrl: str, index: int) -> None:
        import zmq
        from zmq_baseline import TOPIC, _socket

        self.ctx = zmq.Context(io_threads=1)
        self.sub = _socket(self.ctx, zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, TOPIC)
        self.sub.connect(data)
        self.push = _socket(self.ctx, zmq.PUSH)
        self.push.connect(ctrl)
        self.index = index

    def recv(self) -> tuple[int, int, int, int, int, int] | None:
        from zmq_baseline import HEADER, deserialize

        frames = self.sub.recv_multipart(copy=False)
        kind, size, seq, t, n = HEADER.unpack(frames[1].buffer)
        len(deserialize(frames[2].buffer))  # hold the Arrow array, as a node does
        return kind, size, seq, t, n, time.perf_counter_ns()

    def ack(self, kind: int, size: int) -> None:
        self.push.send(json.dumps([kind, size, self.index]).encode())


def zmq_tick_source(endpoint: str, ev: Events) -> None:
    """The start-up floor's source (``scale_launch.py``): a PUB bound on ``endpoint``, ticking."""
    import pyarrow as pa
    import zmq
    from zmq_baseline import HEADER, TOPIC, _socket, serialize

    ctx = zmq.Context(io_threads=1)
    pub = _socket(ctx, zmq.PUB)
    pub.bind(endpoint)
    body = serialize(pa.array(bytes(8), type=pa.uint8()))
    ev.log("node")
    _exit_on_sigint(ev)
    quiet = Path(os.environ[DIR_ENV]) / QUIET_FILE
    first = True
    while True:
        if not quiet.exists():
            pub.send_multipart([TOPIC, HEADER.pack(0, 8, 0, time.perf_counter_ns(), 0), body], copy=False)
            if first:
                ev.log("first")
                first = False
        time.sleep(TICK_S)


def zmq_sink(endpoint: str, ev: Events) -> None:
    """The start-up floor's sink: a SUB connected to the source, holding each tick as Arrow."""
    import pyarrow  # noqa: F401  (what holding the value needs, imported before "node" as a node does)
    import zmq
    from zmq_baseline import TOPIC, _socket, deserialize

    ctx = zmq.Context(io_threads=1)
    sub = _socket(ctx, zmq.SUB)
    sub.setsockopt(zmq.RECONNECT_IVL, 10)  # the source may bind after this connects
    sub.setsockopt(zmq.SUBSCRIBE, TOPIC)
    sub.connect(endpoint)
    ev.log("node")
    _exit_on_sigint(ev)
    first = True
    while True:
        # A bounded wait, not a blocking recv: a SIGINT delivered to ZeroMQ's I/O thread does not
        # interrupt the main thread's recv, and the handler runs only when Python code does.
        if not sub.poll(100):
            continue
        frames = sub.recv_multipart(copy=False)
        len(deserialize(frames[2].buffer))
        if first:
            ev.log("first")
            first = False


def _exit_on_sigint(ev: Events) -> None:
    """The launcher passes a Ctrl-C on: log ``stop`` and leave at once (nothing to flush)."""
    import signal

    def leave(signum: int, frame: Any) -> None:
        ev.log("stop")
        os._exit(0)

    signal.signal(signal.SIGINT, leave)


def fan_sender(link: Any, job: Any, receivers: int) -> None:
    """Sync, then per size: paced latency messages and one burst, each phase acked by all."""
    from common import Kind, make_payloads, marker_value

    p = job.params
    payloads = make_payloads(job.sizes)
    mark = marker_value()
    clock = time.perf_counter_ns

    def bracket(kind: int, size: int, t0: int = 0, count: int = 0) -> None:
        acked: set[int] = set()
        deadline = time.monotonic() + p.ack_timeout_s
        while time.monotonic() < deadline:
            link.send(kind, size, 0, t0, count, mark)
            resend_at = time.monotonic() + _RESEND_S
            while (left := resend_at - time.monotonic()) > 0:
                a = link.poll_ack(left)
                if a is not None and a[0] == kind and a[1] == size:
                    acked.add(a[2])
                    if len(acked) == receivers:
                        return
        raise TimeoutError(f"marker kind={kind} size={size}: acks from {sorted(acked)} of {receivers} receivers")

    bracket(Kind.SYNC, -3)
    for size in job.sizes:
        value = payloads[size]
        for i in range(p.warmup + p.samples):
            link.send(Kind.LAT, size, i, clock(), 1 if i < p.warmup else 0, value)
            time.sleep(p.latency_sleep(size))
        bracket(Kind.LAT_END, size)
        count = p.burst_count(size)
        t0 = clock()
        for i in range(count):
            link.send(Kind.THR, size, i, t0, count, value)
        bracket(Kind.THR_END, size, t0, count)
    for _ in range(3):  # DONE may be dropped (dora-rs); receivers also end with the stream
        link.send(Kind.DONE, -2, 0, 0, 0, mark)


def fan_receiver(link: Any, out: Path) -> None:
    """Record arrivals (``lat[size][seq] = ns``) and bursts; rewrite ``out`` at every bracket."""
    from common import Kind, dump_json

    lat: dict[str, dict[str, int]] = {}
    thr: dict[str, dict[str, int]] = {}
    while (m := link.recv()) is not None:
        kind, size, seq, t, n, now = m
        if kind == Kind.LAT:
            if not n & 1:  # not a warm-up
                lat.setdefault(str(size), {})[str(seq)] = now - t
        elif kind == Kind.THR:
            b = thr.setdefault(str(size), {"received": 0, "sent": n, "t0": t, "last": 0})
            b["received"] += 1
            b["last"] = now
        elif kind in (Kind.SYNC, Kind.LAT_END, Kind.THR_END):
            dump_json(str(out), {"latency_ns": lat, "bursts": thr})
            link.ack(kind, size)
        elif kind == Kind.DONE:
            break
    dump_json(str(out), {"latency_ns": lat, "bursts": thr, "done": True})


# ---- soak --------------------------------------------------------------------------------

SOAK_DATA, SOAK_DONE = 0, 1


def soak_source(node: Any, ev: Events, cfg: dict[str, Any], value: Any) -> None:
    """``rate`` msgs/s for ``seconds`` on a schedule (late sends catch up), then DONE until acked."""
    rate, seconds = float(cfg["rate"]), float(cfg["seconds"])
    clock = time.perf_counter_ns
    start = time.monotonic()
    ev.log("first")
    seq = 0
    while (elapsed := time.monotonic() - start) < seconds:
        due = int(elapsed * rate) + 1
        while seq < due:
            node.send_output("data", value, {"kind": SOAK_DATA, "seq": seq, "t": clock()})
            seq += 1
        time.sleep(max(0.0, (seq / rate) - (time.monotonic() - start)))
    ev.log("sent")
    from common import LinkClosed, marker_value

    mark = marker_value()
    try:
        while True:
            node.send_output("data", mark, {"kind": SOAK_DONE, "seq": seq, "t": clock()})
            end = time.monotonic() + _RESEND_S
            while (left := end - time.monotonic()) > 0:
                e = _dora_next(node, left)
                if e is not None and e["type"] == "INPUT" and e["id"] == "ack":
                    return
    except LinkClosed:
        ev.log("stop")


def relay(node: Any) -> None:
    while True:
        e = node.next()
        if e is None or e["type"] == "STOP":
            break
        if e["type"] == "INPUT":
            node.send_output(e["id"], e["value"], {k: e["metadata"][k] for k in ("kind", "seq", "t")})


def soak_sink(node: Any, ev: Events, out: Path) -> None:
    """Count, check order, keep every 50th latency; on DONE write ``out`` and ack."""
    from common import dump_json, latency_stats, marker_value

    received = gaps = dups = 0
    expected = first_seq = 0
    lat: list[int] = []
    sent = None
    mark = marker_value()
    while True:
        e = node.next()
        if e is None:
            break
        if e["type"] == "STOP":
            ev.log("stop")
            break
        if e["type"] != "INPUT":
            continue
        now = time.perf_counter_ns()
        md = e["metadata"]
        if md["kind"] == SOAK_DONE:
            if sent is None:
                sent = md["seq"]
                stats = latency_stats(lat)
                stats.pop("samples_ns")
                result = {
                    "sent": sent,
                    "received": received,
                    "gaps": gaps,
                    "dups": dups,
                    "first_seq": first_seq,
                    "latency": stats,
                }
                dump_json(str(out), result)
            node.send_output("ack", mark, {})
            continue
        if received == 0:
            ev.log("first")
            first_seq = md["seq"]  # > 0: lost before the graph was connected
        received += 1
        seq = md["seq"]
        if seq > expected:
            gaps += seq - expected
        elif seq < expected:
            dups += 1
        expected = max(expected, seq + 1)
        if seq % _LAT_KEEP_EVERY == 0:
            lat.append(now - md["t"])


# ---- entry -------------------------------------------------------------------------------


def main() -> None:
    role = os.environ.get(ROLE_ENV, "")
    if "--role" in sys.argv:  # raw ZeroMQ: --role R --data EP [--index I --ctrl EP]
        a = sys.argv[sys.argv.index("--role") + 1 :]
        opts = dict(zip(a[1::2], a[2::2]))
        if a[0] in ("tick-source", "sink"):  # the start-up floor (scale_launch.py)
            ev = Events(os.environ[ID_ENV])
            ev.log("start", T_START)
            (zmq_tick_source if a[0] == "tick-source" else zmq_sink)(opts["--data"], ev)
            return
        from common import Job

        job = Job.from_env()
        if a[0] == "fan-sender":
            link = ZmqFanSender(opts["--data"], opts["--ctrl"])
            fan_sender(link, job, int(os.environ[FAN_ENV]))
            link.ctx.destroy(linger=1000)
        else:
            rlink = ZmqFanReceiver(opts["--data"], opts["--ctrl"], int(opts["--index"]))
            fan_receiver(rlink, Path(job.out) / f"receiver{opts['--index']}.json")
            rlink.ctx.destroy(linger=0)
        return
    node_id = os.environ[ID_ENV]
    ev = Events(node_id)
    ev.log("start", T_START)
    from _dora_api import make_node

    node = make_node()
    ev.log("node")
    if role in ("tick-source", "soak-source"):
        import pyarrow as pa

        size = int(json.loads(os.environ.get(SOAK_ENV, "{}")).get("size", 8))
        value = pa.array(bytes(size), type=pa.uint8())
        if role == "tick-source":
            tick_source(node, ev, value)
        else:
            soak_source(node, ev, json.loads(os.environ[SOAK_ENV]), value)
    elif role == "sink":
        sink(node, ev)
    elif role == "relay":
        relay(node)
    elif role == "soak-sink":
        soak_sink(node, ev, Path(os.environ[DIR_ENV]) / "sink.json")
    elif role == "fan-sender":
        from common import Job

        fan_sender(DoraFanSender(node), Job.from_env(), int(os.environ[FAN_ENV]))
    elif role == "fan-receiver":
        from common import Job

        index = int(node_id.removeprefix("receiver"))
        fan_receiver(DoraFanReceiver(node, index), Path(Job.from_env().out) / f"{node_id}.json")
    else:
        raise SystemExit(f"unknown {ROLE_ENV}={role!r}")


if __name__ == "__main__":
    main()
