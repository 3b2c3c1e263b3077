"""The benchmark's scale variants (benchmarks/scale.py): the statistics, and one tiny run of each.

The run is real (``dora-zmq run`` dataflows, raw pyzmq processes) with the smallest settings:
it checks that every variant produces its result and leaves no process behind, not the figures.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from _bench_path import BENCH, benchmark_modules

with benchmark_modules():
    import scale_flows
    from scale import fan_stats
    from scale_imports import chain, group_of, parents


def test_fan_stats_take_the_last_receiver_per_message() -> None:
    recv = [
        {
            "latency_ns": {"8": {"0": 1000, "1": 5000}},
            "bursts": {"8": {"received": 10, "sent": 10, "t0": 1, "last": 1_000_000_001}},
        },
        {
            "latency_ns": {"8": {"0": 3000, "1": 2000}},
            "bursts": {"8": {"received": 9, "sent": 10, "t0": 1, "last": 500_000_001}},
        },
    ]
    s = fan_stats(recv, [8], samples=2)["8"]
    assert s["p50_last_us"] == pytest.approx(4.0)  # per message the later arrival: 3 µs and 5 µs
    assert s["p50_receiver_median_us"] == pytest.approx(2.75)  # the median of the receivers' p50s, 3 and 2.5 µs
    assert s["msgs_per_s"] == pytest.approx(9.0)  # what every receiver got, over the slowest's time
    assert s["lost"] == 1 and s["latency_lost"] == 0


def test_graphs_and_import_groups() -> None:
    assert len(scale_flows.fanout(3)["nodes"]) == 4
    assert len(scale_flows.fleet(49)["nodes"]) == 50
    assert [n["id"] for n in scale_flows.soak()["nodes"]] == ["source", "relay1", "relay2", "relay3", "sink"]
    assert group_of("dora_zmq.node._runtime") == "dora_zmq.node"
    assert group_of("zmq.auth.thread") == "zmq.auth"
    assert group_of("opentelemetry.sdk.trace") == "opentelemetry"


def test_importtime_tree_gives_each_module_its_importer() -> None:
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:        10 |         10 |       asyncio.base_events",
            "import time:        20 |         30 |     asyncio",
            "import time:         5 |         35 |   zmq.auth.thread",
            "import time:         1 |          1 |   dora_zmq._errors",
            "import time:         7 |         43 | dora_zmq.security",
        ]
    )
    parent, order = parents(stderr)
    assert order[0] == "asyncio.base_events" and order[-1] == "dora_zmq.security"
    assert chain(parent, "asyncio.base_events") == [
        "dora_zmq.security",
        "zmq.auth.thread",
        "asyncio",
        "asyncio.base_events",
    ]
    assert chain(parent, "dora_zmq._errors") == ["dora_zmq.security", "dora_zmq._errors"]


@pytest.mark.timeout(170)
def test_every_scale_variant_runs_with_tiny_settings(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        str(BENCH / "run.py"),
        "--variant",
        "fanout,startup,memory,soak",
        "--quick",
        "--sizes",
        "8",
        "--receivers",
        "2",
        "--nodes",
        "1",
        "--memory-sinks",
        "1",
        "--minutes",
        "0.05",
        "--sample-s",
        "1",
        "--out",
        str(tmp_path),
        "--no-plots",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=160, check=False, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    [path] = tmp_path.glob("*.json")
    doc = json.loads(path.read_text())
    sc = doc["scale"]
    fan = sc["fanout"]["targets"]
    assert set(fan) == {"dora_zmq", "zmq"}
    for t in fan.values():
        s = t["2"]["median"]["8"]
        assert s["lost"] == 0 and s["latency_lost"] == 0 and s["p50_last_us"] > 0
    up = sc["startup"]["targets"]["dora_zmq"]["1"]["median"]
    assert up["first_all_s"] > 0 and up["stop_s"] > 0 and up["cpu_s"] > 0 and up["saw_stop"] == 2 and up["leaked"] == 0
    floor = sc["startup"]["targets"]["zmq"]["1"]["median"]  # the raw pyzmq floor (scale_launch.py)
    assert floor["first_all_s"] > 0 and floor["saw_stop"] == 2 and floor["leaked"] == 0
    assert not floor["stop_error"] and floor["stop_s"] < 5  # (left on SIGINT, not killed 5 s later)
    mem = sc["memory"]["targets"]["dora_zmq"]
    assert mem["dataflows"]["2"]["sink"]["rss_MB"] > 0
    assert {"coordinator", "daemon"} <= set(mem["services"])
    assert sc["memory"]["imports"]["dora_zmq"]["importtime"]["groups_ms"]
    soak = sc["soak"]["targets"]["dora_zmq"]["result"]
    assert soak["lost"] == 0 and soak["sink"]["gaps"] == 0 and soak["sink"]["received"] > 0
    assert {"source", "relay1", "relay2", "relay3", "sink", "run"} <= set(soak["processes"])
    if importlib.util.find_spec("matplotlib") is not None:
        with benchmark_modules():
            import scale_plots
        files = scale_plots.draw(path, tmp_path / "plots")
        assert {f.name for f in files} == {"fanout.png", "startup.png", "memory.png", "soak.png"}


@pytest.mark.timeout(120)
def test_receive_costs_measure_every_stage_of_both_receivers(tmp_path: Path) -> None:
    with benchmark_modules():
        import receive_costs

    got = receive_costs.measure(16384, 300, str(tmp_path))
    assert set(got) == {"dora_zmq", "raw pyzmq"}
    for stage in ("recv", "decode", "event", "next"):
        assert got["dora_zmq"][stage] > 0, stage
    assert got["raw pyzmq"]["recv"] > 0 and got["raw pyzmq"]["decode"] > 0
