"""Benchmark method shared by every implementation: sizes, counts, pacing, protocol, statistics.

This module is imported by the orchestrator (``run.py``) *and* by the node/baseline processes,
including nodes running under a dora-rs virtualenv, so it depends only on the standard library,
NumPy and PyArrow (never on dora_zmq or rich).

The method is the one of the peer benchmark (shared/peer-bench):

- payload: a ``pyarrow.UInt8Array`` of ``size`` random bytes, built once per size;
- latency: ``warmup`` + ``samples`` messages per size, paced ``max(5 ms, 2 ns/B)`` apart,
  one-way from just before the send call to the receiver holding the Arrow data
  (``time.perf_counter_ns``: CLOCK_MONOTONIC, shared by all processes of one host);
- throughput: bursts of ``clamp(200 MB / size, 50, 5000)`` messages, back to back; the
  receiver counts what arrives; rate = delivered / (last arrival - first send);
- alternating tracing (``ALTERNATE_ENV``, dora_zmq with ``OTEL_*`` set): in the latency phase
  even messages are traced and odd ones are not, ``warmup`` + ``paired_samples`` of each class
  (a difference of two medians needs more samples than one median); the receiver records the
  classes apart (``latency`` = traced, ``latency_untraced``). Drift in the run hits both classes
  alike; :func:`paired_tracing` turns the runs into the cost per hop.

A sender talks to a :class:`SenderLink` and a receiver to a :class:`ReceiverLink`; the links
are the only per-implementation code (raw ZeroMQ, dora_zmq, dora-rs).
"""

from __future__ import annotations

import json
import logging
import os
import re
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple, Protocol

log = logging.getLogger(__name__)

# ---- sizes -------------------------------------------------------------------------------

#: dora-rs' own benchmark sizes, plus 16 MiB as a large-frame point.
SIZES: tuple[int, ...] = (0, 8, 64, 512, 2048, 4096, 16384, 40960, 409600, 4096000, 16 * 1024 * 1024)

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 10**6, "mb": 10**6, "mib": 1024**2}


def parse_size(text: str) -> int:
    """``"4096"``, ``"4KiB"``, ``"16MiB"``, ``"4k"`` -> bytes.

    Raises:
        ValueError: for anything else.
    """
    m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (use bytes, or a unit: KiB, MiB, k, M)")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def parse_sizes(text: str) -> list[int]:
    """A comma-separated list of sizes, de-duplicated and sorted."""
    return sorted({parse_size(part) for part in text.split(",") if part.strip()})


def human(size: int) -> str:
    """``16777216`` -> ``"16MiB"``, ``4096`` -> ``"4KiB"``, ``4096000`` -> ``"4000KiB"``."""
    if size >= 1024**2 and size % 1024**2 == 0:
        return f"{size // 1024**2}MiB"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024}KiB"
    return f"{size}B"


#: which dora-style API the node scripts use: ``dora`` (dora-rs) or anything else (dora_zmq)
#: Set to 1: the dora_zmq sender writes each payload into an output sample (node.allocate_output)
#: before the clock starts, as a producer that builds its data in place would, and sends that.
ZERO_COPY_ENV = "BENCH_ZERO_COPY"
API_ENV = "BENCH_API"
#: Set to 1 (with tracing configured): latency messages alternate traced / untraced in one run.
ALTERNATE_ENV = "BENCH_ALTERNATE_TRACING"


def alternating() -> bool:
    """Whether this process runs with alternating tracing (see ``ALTERNATE_ENV``)."""
    return os.environ.get(ALTERNATE_ENV) == "1"


# ---- parameters --------------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """Sample counts and pacing; ``full()`` is the peer method, ``quick()`` a CI smoke."""

    warmup: int = 5
    samples: int = 100
    paired_samples: int = 300  # per class (traced, untraced) in an alternating run
    pace_min_s: float = 0.005
    pace_s_per_byte: float = 2e-9
    burst_max: int = 5000
    burst_min: int = 50
    burst_bytes: int = 200 * 10**6
    ack_timeout_s: float = 120.0

    @classmethod
    def full(cls) -> Params:
        return cls()

    @classmethod
    def quick(cls) -> Params:
        return cls(
            warmup=2,
            samples=30,
            paired_samples=30,
            burst_max=1000,
            burst_min=10,
            burst_bytes=20 * 10**6,
            ack_timeout_s=60.0,
        )

    def latency_sleep(self, size: int) -> float:
        """Pause after each latency message: big frames are measured unqueued."""
        return max(self.pace_min_s, size * self.pace_s_per_byte)

    def burst_count(self, size: int) -> int:
        """Messages in one throughput burst: ``clamp(burst_bytes / size, burst_min, burst_max)``."""
        if size <= 0:
            return self.burst_max
        return max(self.burst_min, min(self.burst_max, self.burst_bytes // size))

    def latency_count(self, alternate: bool = False) -> int:
        """Latency messages per size: ``warmup + samples``; ``warmup + paired_samples`` per class when alternating."""
        return 2 * (self.warmup + self.paired_samples) if alternate else self.warmup + self.samples

    def expected_seconds(self, sizes: list[int], alternate: bool = False) -> float:
        """A rough upper estimate of one run (latency pacing + bursts at a slow 200 MB/s)."""
        lat = sum(self.latency_count(alternate) * (self.latency_sleep(s) + 0.001 + s / 1e9) for s in sizes)
        thr = sum(self.burst_count(s) * (100e-6 + s / 200e6) for s in sizes)
        return lat + thr


@dataclass(frozen=True)
class Job:
    """What one sender/receiver pair runs: passed to node processes as JSON in ``BENCH_JOB``."""

    sizes: tuple[int, ...]
    params: Params
    out: str  # where the receiver writes its result

    ENV = "BENCH_JOB"

    def to_env(self) -> str:
        return json.dumps({"sizes": list(self.sizes), "params": asdict(self.params), "out": self.out})

    @classmethod
    def from_env(cls) -> Job:
        raw = os.environ.get(cls.ENV)
        if not raw:
            raise SystemExit(f"{cls.ENV} is not set: this script is started by benchmarks/run.py")
        d = json.loads(raw)
        return cls(tuple(d["sizes"]), Params(**d["params"]), d["out"])


def make_payloads(sizes: list[int] | tuple[int, ...]) -> dict[int, Any]:
    """One random ``pyarrow.UInt8Array`` per size (same seed everywhere)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(42)
    return {s: pa.array(rng.integers(0, 256, size=s, dtype=np.uint8), type=pa.uint8()) for s in sizes}


def marker_value() -> Any:
    """The small payload of end-of-bracket markers and acks."""
    import pyarrow as pa

    return pa.array([1], type=pa.uint8())


# ---- protocol ----------------------------------------------------------------------------


class Kind:
    """Message kinds; ``n`` holds LAT's flags (``WARMUP``, ``TRACED``), THR/THR_END's burst count."""

    HELLO = 0  # raw-ZeroMQ slow-joiner handshake only
    LAT = 1
    LAT_END = 2
    THR = 3
    THR_END = 4
    DONE = 5
    SYNC = 6  # sent (and acked) until the whole chain is up, before the latency phase


#: flags in a LAT message's ``n``: a warm-up message; a traced one (alternating tracing only)
WARMUP = 1
TRACED = 2


class Msg(NamedTuple):
    """One received message as the receiver sees it."""

    kind: int
    size: int
    seq: int
    t: int  # sender perf_counter_ns (LAT: just before sending; THR: burst start)
    n: int
    rows: int  # length of the Arrow array the receiver holds
    now: int  # receiver perf_counter_ns once it holds the data
    valid: bool = True  # False: received with tracing in the other state than its class (not a sample)


class LinkClosed(Exception):
    """The other side went away (event stream ended, STOP)."""


class SenderLink(Protocol):
    def send(self, kind: int, size: int, seq: int, t: int, n: int, value: Any) -> None: ...

    def produce(self, kind: int, value: Any) -> Any:
        """The payload as the link sends it, made before the clock starts (see ``ZERO_COPY_ENV``)."""
        ...

    def poll_ack(self, timeout_s: float) -> int | None:
        """The size field of the next ack, or None after ``timeout_s``; LinkClosed at the end."""
        ...

    def trace(self, on: bool) -> None:
        """Tracing on or off for the next sends (alternating tracing; a no-op without tracing)."""
        ...


class ReceiverLink(Protocol):
    def recv(self) -> Msg | None:
        """The next message, or None when the stream has ended."""
        ...

    def ack(self, size: int) -> None: ...


_MARKER_RESEND_S = 0.5  # dora-rs' data plane may drop a marker after a burst


def run_sender(link: SenderLink, job: Job) -> None:
    """The whole sender side: sync, latency phase, one burst per size, DONE.

    Raises:
        TimeoutError: the receiver never acknowledged a bracket.
        LinkClosed: the dataflow ended under us.
    """
    p = job.params
    alt = alternating()
    payloads = make_payloads(job.sizes)
    mark = marker_value()
    clock = time.perf_counter_ns
    _bracket(link, p, Kind.SYNC, -3, 0, 0, mark)
    warmup = p.warmup * (2 if alt else 1)
    for size in job.sizes:
        value = payloads[size]
        pause = p.latency_sleep(size)
        for i in range(p.latency_count(alt)):
            flags = WARMUP if i < warmup else 0
            if alt:  # even messages traced, odd ones not (an even count per size: global parity too)
                traced = i % 2 == 0
                link.trace(traced)
                flags |= TRACED if traced else 0
            payload = link.produce(Kind.LAT, value)
            link.send(Kind.LAT, size, i, clock(), flags, payload)
            time.sleep(pause)
    if alt:
        link.trace(True)
    _bracket(link, p, Kind.LAT_END, -1, 0, 0, mark)
    for size in job.sizes:
        value = payloads[size]
        count = p.burst_count(size)
        t0 = clock()
        for i in range(count):
            link.send(Kind.THR, size, i, t0, count, link.produce(Kind.THR, value))
        _bracket(link, p, Kind.THR_END, size, t0, count, mark)
    link.send(Kind.DONE, -2, 0, 0, 0, mark)


def _bracket(link: SenderLink, p: Params, kind: int, size: int, t0: int, count: int, mark: Any) -> None:
    """Send an end marker and wait for its ack (re-sending it now and then)."""
    deadline = time.monotonic() + p.ack_timeout_s
    while time.monotonic() < deadline:
        link.send(kind, size, 0, t0, count, mark)
        resend_at = time.monotonic() + _MARKER_RESEND_S
        while (left := resend_at - time.monotonic()) > 0:
            if link.poll_ack(left) == size:
                return
    raise TimeoutError(f"no ack from the receiver for marker kind={kind} size={size} within {p.ack_timeout_s:.0f} s")


class Recorder:
    """Receiver-side bookkeeping: latency samples, burst counts, first-marker results.

    Latency samples of untraced messages in an alternating run go to ``untraced``; every other
    one (traced, or any in an ordinary run) to ``latency``.
    """

    def __init__(self) -> None:
        self.latency: dict[int, list[int]] = {}
        self.untraced: dict[int, list[int]] = {}
        self.class_mismatch = 0
        self.alternating = alternating()
        self.burst_n: dict[int, int] = {}
        self.burst_last: dict[int, int] = {}
        self.throughput: dict[str, dict[str, float]] = {}
        self.size_mismatch = 0

    def record(self, m: Msg) -> tuple[bool, bool]:
        """Account one message; returns ``(ack_it, done)``."""
        if m.kind == Kind.LAT:
            self.size_mismatch += m.rows != m.size
            if m.n & WARMUP:
                pass
            elif not m.valid:
                self.class_mismatch += 1
            else:
                into = self.latency if m.n & TRACED or not self.alternating else self.untraced
                into.setdefault(m.size, []).append(m.now - m.t)
        elif m.kind == Kind.THR:
            self.size_mismatch += m.rows != m.size
            self.burst_n[m.size] = self.burst_n.get(m.size, 0) + 1
            self.burst_last[m.size] = m.now
        elif m.kind == Kind.THR_END:
            if str(m.size) not in self.throughput:  # markers may be re-sent; the first counts
                self.throughput[str(m.size)] = throughput_stats(
                    m.size, m.n, self.burst_n.get(m.size, 0), m.t, self.burst_last.get(m.size, 0)
                )
            return True, False
        elif m.kind in (Kind.LAT_END, Kind.SYNC):
            return True, False
        elif m.kind == Kind.DONE:
            return False, True
        return False, False

    def result(self) -> dict[str, Any]:
        out = {
            "latency": {str(s): latency_stats(v) for s, v in sorted(self.latency.items())},
            "throughput": self.throughput,
            "size_mismatch": self.size_mismatch,
        }
        if self.alternating:
            out["latency_untraced"] = {str(s): latency_stats(v) for s, v in sorted(self.untraced.items())}
            out["class_mismatch"] = self.class_mismatch
        return out


def run_receiver(link: ReceiverLink, job: Job) -> dict[str, Any]:
    """The whole receiver side; writes the result JSON to ``job.out`` and returns it."""
    rec = Recorder()
    done = False
    while (m := link.recv()) is not None:
        ack, done = rec.record(m)
        if ack:
            link.ack(m.size)
        if done:
            break
    result = rec.result()
    # dora-rs may drop the final DONE marker; every burst accounted for is complete too
    result["complete"] = done or {str(s) for s in job.sizes} <= set(rec.throughput)
    dump_json(job.out, result)
    return result


# ---- statistics --------------------------------------------------------------------------


def percentile(sorted_vals: list[float], p: float) -> float:
    """Linear-interpolated percentile of already sorted values (NaN when empty)."""
    if not sorted_vals:
        return float("nan")
    k = (len(sorted_vals) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(sorted_vals) - 1)
    return sorted_vals[f] + (sorted_vals[c] - sorted_vals[f]) * (k - f)


def latency_stats(samples_ns: list[int]) -> dict[str, Any]:
    """p50/p90/p99/mean/min/max in µs, plus the raw samples (ns, arrival order)."""
    us = sorted(x / 1000.0 for x in samples_ns)
    nan = float("nan")
    return {
        "n": len(us),
        "p50_us": percentile(us, 50),
        "p90_us": percentile(us, 90),
        "p99_us": percentile(us, 99),
        "mean_us": statistics.fmean(us) if us else nan,
        "min_us": us[0] if us else nan,
        "max_us": us[-1] if us else nan,
        "samples_ns": list(samples_ns),
    }


def throughput_stats(size: int, sent: int, received: int, t0_ns: int, t_last_ns: int) -> dict[str, float]:
    """Delivered rate of one burst (NaN when nothing arrived)."""
    dt = (t_last_ns - t0_ns) / 1e9 if t_last_ns and t0_ns else float("nan")
    msgs = received / dt if dt > 0 else float("nan")
    return {
        "sent": sent,
        "received": received,
        "lost": sent - received,
        "seconds": dt,
        "msgs_per_s": msgs,
        "MB_per_s": msgs * size / 1e6,
    }


_LAT_KEYS = ("p50_us", "p90_us", "p99_us", "mean_us", "min_us", "max_us")
_THR_KEYS = ("msgs_per_s", "MB_per_s", "seconds")


def median_of_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-size medians of the runs' metrics; losses are the worst run's."""
    out: dict[str, Any] = {"latency": {}, "throughput": {}, "runs": len(runs)}
    for part in ("latency", "latency_untraced"):
        if any(part in r for r in runs):
            out[part] = _median_latency([r.get(part, {}) for r in runs])
    for k in sorted({k for r in runs for k in r["throughput"]}, key=int):
        vals = [r["throughput"][k] for r in runs if k in r["throughput"]]
        out["throughput"][k] = {m: statistics.median(v[m] for v in vals) for m in _THR_KEYS}
        out["throughput"][k]["sent"] = min(v["sent"] for v in vals)
        out["throughput"][k]["received"] = min(v["received"] for v in vals)
        out["throughput"][k]["lost"] = max(v["lost"] for v in vals)
    return out


def _median_latency(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-size medians of latency statistics (``{size: latency_stats()}`` per run)."""
    out: dict[str, Any] = {}
    for k in sorted({k for r in runs for k in r}, key=int):
        vals = [r[k] for r in runs if k in r]
        out[k] = {m: statistics.median(v[m] for v in vals) for m in _LAT_KEYS}
        out[k]["n"] = min(v["n"] for v in vals)
    return out


def paired_tracing(runs: list[dict[str, Any]], hops: int) -> dict[str, Any]:
    """The cost of tracing per size from alternating runs, per hop.

    Per run: traced p50 - untraced p50 (and p90) divided by ``hops``; reported: the median over
    the runs of those differences (paired within each run, so drift between runs cancels), the
    per-run values, and the medians of both classes' p50/p90/p99.
    """
    out: dict[str, Any] = {}
    paired = [r for r in runs if "latency_untraced" in r]
    for k in sorted({k for r in paired for k in r["latency_untraced"]}, key=int):
        both = [
            (r["latency"][k], r["latency_untraced"][k])
            for r in paired
            if k in r["latency"] and k in r["latency_untraced"]
        ]
        if not both:
            continue
        added = {q: [(on[f"{q}_us"] - off[f"{q}_us"]) / hops for on, off in both] for q in ("p50", "p90")}
        out[k] = {
            "traced": {m: statistics.median(on[m] for on, _ in both) for m in ("p50_us", "p90_us", "p99_us")},
            "untraced": {m: statistics.median(off[m] for _, off in both) for m in ("p50_us", "p90_us", "p99_us")},
            "n": min(min(on["n"], off["n"]) for on, off in both),
            "added_p50_us_per_hop": statistics.median(added["p50"]),
            "added_p90_us_per_hop": statistics.median(added["p90"]),
            "added_p50_us_per_hop_runs": added["p50"],
            "hops": hops,
            "runs": len(both),
        }
    return out


def dump_json(path: str, obj: Any) -> None:
    """Write JSON atomically (a reader never sees a half-written file)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
