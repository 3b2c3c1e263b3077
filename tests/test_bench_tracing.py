"""The benchmark's tracing variant: traced and untraced messages alternating in one run.

Unit tests of the pieces (the receiver's guess of the next class, the recorder's classes, the
paired statistics) and one quick run of ``benchmarks/run.py --variant tracing``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from _bench_path import BENCH, REPO, benchmark_modules

with benchmark_modules():
    import common
    from _dora_api import TracingSwitch
    from common import TRACED, WARMUP, Kind, Msg, Recorder, paired_tracing

_OTEL = "open_telemetry_context"


class _Node:
    """What TracingSwitch touches of a dora_zmq Node."""

    def __init__(self) -> None:
        self._tracing: Any = object()


def _lat(traced: bool, context: bool | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"kind": Kind.LAT, "n": TRACED if traced else 0}
    if traced if context is None else context:
        md[_OTEL] = "traceparent:00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    return md


def test_switch_follows_the_alternation() -> None:
    node = _Node()
    tracer = node._tracing
    switch = TracingSwitch(node)
    seen = []
    for traced in (True, False, True, False):
        switch.before_next()
        seen.append(node._tracing is tracer)
        assert switch.matched(_lat(traced))
    assert seen == [True, False, True, False]
    switch.before_next()  # expects traced; an untraced one (a traced one was lost) is dropped
    assert not switch.matched(_lat(False))
    switch.before_next()  # and the guess follows the messages again
    assert node._tracing is tracer and switch.matched(_lat(True))
    switch.before_next()
    assert switch.matched({"kind": Kind.LAT_END, "n": 0})
    switch.before_next()  # outside the latency phase: traced
    assert node._tracing is tracer


def test_switch_rejects_a_message_whose_context_disagrees_with_its_class() -> None:
    switch = TracingSwitch(_Node())
    switch.before_next()
    assert not switch.matched(_lat(True, context=False))
    switch.before_next()
    assert not switch.matched(_lat(False, context=True))


def test_switch_needs_a_node_with_tracing() -> None:
    node = _Node()
    node._tracing = None
    with pytest.raises(RuntimeError, match="OTEL_"):
        TracingSwitch(node)


def test_recorder_keeps_the_classes_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(common.ALTERNATE_ENV, "1")
    rec = Recorder()
    msgs = [
        Msg(Kind.LAT, 8, 0, 0, WARMUP | TRACED, 8, 500),  # warm-up: not a sample
        Msg(Kind.LAT, 8, 1, 0, TRACED, 8, 300_000),
        Msg(Kind.LAT, 8, 2, 0, 0, 8, 200_000),
        Msg(Kind.LAT, 8, 3, 0, TRACED, 8, 1, valid=False),  # received in the wrong state
    ]
    for m in msgs:
        rec.record(m)
    result = rec.result()
    assert result["latency"]["8"]["samples_ns"] == [300_000]
    assert result["latency_untraced"]["8"]["samples_ns"] == [200_000]
    assert result["class_mismatch"] == 1


def test_recorder_without_alternation_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(common.ALTERNATE_ENV, raising=False)
    rec = Recorder()
    rec.record(Msg(Kind.LAT, 8, 0, 0, WARMUP, 8, 5))
    rec.record(Msg(Kind.LAT, 8, 1, 0, 0, 8, 7000))
    result = rec.result()
    assert result["latency"]["8"]["samples_ns"] == [7000]
    assert "latency_untraced" not in result and "class_mismatch" not in result


def _run(traced_p50: float, untraced_p50: float) -> dict[str, Any]:
    def stats(p50: float) -> dict[str, Any]:
        return {"n": 300, "p50_us": p50, "p90_us": p50 + 100, "p99_us": p50 + 1000}

    return {"latency": {"8": stats(traced_p50)}, "latency_untraced": {"8": stats(untraced_p50)}}


def test_paired_tracing_is_the_median_of_each_runs_difference_per_hop() -> None:
    # run-to-run drift (the 2nd run is 400 µs slower) does not reach the paired figure
    runs = [_run(280, 200), _run(640, 600), _run(300, 200)]
    out = paired_tracing(runs, hops=4)["8"]
    assert out["added_p50_us_per_hop_runs"] == [20.0, 10.0, 25.0]
    assert out["added_p50_us_per_hop"] == 20.0
    assert out["added_p90_us_per_hop"] == 20.0
    assert out["traced"]["p50_us"] == 300 and out["untraced"]["p50_us"] == 200
    assert (out["hops"], out["runs"], out["n"]) == (4, 3, 300)
    assert paired_tracing([{"latency": {"8": {}}}], hops=1) == {}  # runs of an ordinary target


@pytest.mark.timeout(180)
def test_quick_tracing_variant_runs(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        str(BENCH / "run.py"),
        "--quick",
        "--variant",
        "tracing",
        "--sizes",
        "8",
        "--no-baseline",
        "--out",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=170, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "tracing on, 8B:" in proc.stdout and "µs per hop (p50)" in proc.stdout
    (result,) = tmp_path.glob("*.json")
    doc = json.loads(result.read_text())
    variant = doc["variants"]["tracing"]
    (run,) = variant["targets"]["dora_zmq+otel"]["runs"]
    assert run["class_mismatch"] == 0
    assert run["latency"]["8"]["n"] == run["latency_untraced"]["8"]["n"] == 30
    cost = variant["tracing"]["8"]
    assert cost["n"] == 30 and cost["hops"] == 1 and len(cost["added_p50_us_per_hop_runs"]) == 1
    assert variant["targets"]["dora_zmq"]["median"]["throughput"]["8"]["msgs_per_s"] > 0
    assert doc["otlp_sink"]["requests"] > 0  # spans went to a real collector
