"""The scale variants of the benchmark: how cost grows with the graph (issue 16, "Scale").

    python benchmarks/run.py --variant fanout --sizes 8,409600 --dora-venv /work/main/.venv-compat
    python benchmarks/run.py --variant startup,memory --dora-venv /work/main/.venv-compat
    python benchmarks/run.py --variant soak --minutes 10 --dora-venv /work/main/.venv-compat
    python benchmarks/run.py --variant scale --dora-venv ...   # all five (chain10 is run.py's own chain)

- ``fanout``: one sender, 1/2/4/8/16 receivers of one output; per size: p50 to the *last*
  receiver (per message, the latest arrival over the receivers), the median receiver's p50, and
  the burst rate delivered to every receiver; against raw pyzmq (one PUB, N SUB) and dora-rs.
- ``startup``: one tick source + N sinks (N = 1, 10, 50, 100): wall time from starting the run
  command to every node's first message, and from STOP (SIGINT to the run command, a user's
  Ctrl-C) to its exit; CPU = user + system time of the run command and every node it reaped.
  The floor, "zmq": the same node processes over raw pyzmq, started by a bare launcher
  (``scale_launch.py``: no coordinator, daemon or registration).
- ``memory``: RSS / USS / PSS of every process of an idle dataflow (1 source + 1 sink, and
  1 + 49: 50 nodes), of a coordinator and a daemon on their own, and the cost of the imports.
- ``soak``: source -> 3 relays -> sink at a steady rate (2,000 msgs/s) for ``--minutes``:
  RSS, fds and threads of every process sampled, start and end compared, nothing lost.

This module measures and returns plain dicts; ``scale_report`` builds the tables, ``run.py``
prints them and writes the JSON, ``scale_plots`` draws the PNGs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import scale_flows
import scale_imports
import zmq_baseline
from common import API_ENV, Job, Params, percentile
from procs import run_group
from rich.markup import escape
from scale_fleet import Event, Fleet, FleetFailed, sample
from scale_node import FAN_ENV, QUIET_FILE, SOAK_ENV

SCALE = ("fanout", "startup", "memory", "soak")  # run here; "chain10" is run.py's chain of 9 links
ALL = (*SCALE, "chain10")
FANOUT = (1, 2, 4, 8, 16)
STARTUP = (1, 10, 50, 100)
MEMORY = (1, 49)  # sinks: an idle node; a 50-node dataflow
_FIRST_TIMEOUT_S = 300.0
_STOP_TIMEOUT_S = 120.0
_SETTLE_S = 1.0  # after the last tick, before memory is read: the nodes are idle


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The scale variants' options, on ``run.py``'s parser."""
    g = ap.add_argument_group("scale variants (fanout, startup, memory, soak; 'scale' = all + chain10)")
    g.add_argument("--receivers", default=",".join(map(str, FANOUT)), help="fanout: receiver counts")
    g.add_argument("--nodes", default=",".join(map(str, STARTUP)), help="startup: sink counts (one source + N sinks)")
    g.add_argument(
        "--memory-sinks", default=",".join(map(str, MEMORY)), help="memory: sink counts of the idle dataflows"
    )
    g.add_argument("--minutes", type=float, default=10.0, help="soak: duration per target")
    g.add_argument("--rate", type=float, default=2000.0, help="soak: messages per second")
    g.add_argument(
        "--sample-s", type=float, default=None, help="soak: sampling period (default: 100 samples per run, >= 1 s)"
    )
    g.add_argument(
        "--no-plots",
        action="store_true",
        help="do not redraw benchmarks/plots/*.png (needs matplotlib: the bench extra; never for --quick)",
    )


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


@dataclass(frozen=True)
class Impl:
    """An implementation that runs a dataflow YAML: dora_zmq or dora-rs."""

    name: str
    cli: tuple[str, ...]
    api: str
    path_prefix: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "BENCH_", "SCALE_"))}
        env.update(self.extra_env)
        env[API_ENV] = self.api
        if self.path_prefix:
            env["PATH"] = self.path_prefix + os.pathsep + env.get("PATH", "")
        return env


def implementations(dora_venv: Path | None) -> list[Impl]:
    out = [Impl("dora_zmq", (sys.executable, "-m", "dora_zmq", "run"), "dora_zmq")]
    if dora_venv:
        out.append(Impl("dora-rs", (str(dora_venv / "bin" / "dora"), "run"), "dora", str(dora_venv / "bin")))
    return out


#: The start-up floor: the same processes over raw ZeroMQ, started by a bare launcher (scale_launch.py).
START_FLOOR = Impl("zmq", (sys.executable, str(Path(__file__).resolve().parent / "scale_launch.py")), "zmq")


class _Workdir:
    """A temporary directory, removed unless kept (``--keep``) or the run failed."""

    def __init__(self, keep: bool) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="dzscale-"))
        self.keep = keep

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None and not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)


def _median(vals: list[float]) -> float:
    vals = [v for v in vals if v is not None and not math.isnan(v)]
    return statistics.median(vals) if vals else math.nan


def _median_dicts(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Key-wise medians of numeric leaves (nested dicts followed); lists and strings from the first run."""
    out: dict[str, Any] = {}
    for k, v in runs[0].items():
        if isinstance(v, dict):
            out[k] = _median_dicts([r[k] for r in runs if isinstance(r.get(k), dict)])
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = _median([float(r[k]) for r in runs if k in r])
        else:
            out[k] = v
    return out


Log = Callable[[str], None]


def _attempt(errors: list[str], what: str, log: Log, fn: Callable[..., Any], *fn_args: Any) -> Any | None:
    """``fn(*fn_args)``, or None once its failure is recorded in ``errors`` and logged."""
    try:
        return fn(*fn_args)
    except FleetFailed as exc:
        errors.append(str(exc)[-2000:])
        log(f"[red]{what}: FAILED[/] {escape(str(exc)[:600])}")
        return None


# ---- fan-out -----------------------------------------------------------------------------


def fan_stats(receivers: list[dict[str, Any]], sizes: list[int], samples: int) -> dict[str, Any]:
    """Per size: latency to the last receiver and per receiver, burst rate to all, losses."""
    out: dict[str, Any] = {}
    n = len(receivers)
    for size in map(str, sizes):
        lats = [r["latency_ns"].get(size, {}) for r in receivers]
        common = set.intersection(*(set(x) for x in lats)) if lats else set()
        last = sorted(max(x[s] for x in lats) / 1000 for s in common)
        each = [percentile(sorted(v / 1000 for v in x.values()), 50) for x in lats]
        bursts = [r["bursts"].get(size) for r in receivers]
        got = [b["received"] if b else 0 for b in bursts]
        sent = max((b["sent"] for b in bursts if b), default=0)
        t0 = min((b["t0"] for b in bursts if b), default=0)
        t_last = max((b["last"] for b in bursts if b), default=0)
        secs = (t_last - t0) / 1e9 if t0 and t_last else math.nan
        out[size] = {
            "p50_last_us": percentile(last, 50),
            "p90_last_us": percentile(last, 90),
            "p99_last_us": percentile(last, 99),
            "p50_receiver_median_us": _median(each),
            "latency_lost": samples * n - sum(len(x) for x in lats),
            "msgs_per_s": min(got) / secs if secs and secs > 0 else math.nan,  # delivered to every receiver
            "deliveries_per_s": sum(got) / secs if secs and secs > 0 else math.nan,
            "burst": sent,
            "lost": sent * n - sum(got),
        }
    return out


def _fan_once(impl: Impl | None, n: int, sizes: list[int], params: Params, keep: bool) -> dict[str, Any]:
    """One fan-out run; ``impl`` None is raw pyzmq."""
    with _Workdir(keep) as wd:
        job = Job(tuple(sizes), params, str(wd))
        base = impl or Impl("zmq", (), "zmq")
        env = base.env()
        env.update({Job.ENV: job.to_env(), FAN_ENV: str(n), "SCALE_DIR": str(wd)})
        node = scale_flows.NODE
        if impl is None:
            data, ctrl = zmq_baseline.endpoints(wd, 1)
            cmds = [
                [sys.executable, node, "--role", "fan-receiver", "--index", str(i), "--data", data, "--ctrl", ctrl]
                for i in range(n)
            ]
            cmds.append([sys.executable, node, "--role", "fan-sender", "--data", data, "--ctrl", ctrl])
            names = [f"receiver{i}" for i in range(n)] + ["sender"]
        else:
            yml = scale_flows.write(wd, scale_flows.fanout(n), f"fan-out to {n}")
            cmds, names = [[*impl.cli, str(yml)]], ["run"]
        timeout = 120 + 3 * params.expected_seconds(sizes) * (1 + n / 4)
        res = run_group(cmds, env, wd, timeout, names)
        files = [wd / f"receiver{i}.json" for i in range(n)]
        if not res.ok or not all(f.exists() for f in files):
            raise FleetFailed(
                f"fanout {base.name} x{n}: exit codes {res.returncodes} {res.problem}; {wd}\n{res.tail()}"
            )
        stats = fan_stats([json.loads(f.read_text()) for f in files], sizes, params.samples)
        return {"sizes": stats, "wall_s": res.seconds, "leaked": res.leaked}


def measure_fanout(args: argparse.Namespace, params: Params, log: Log) -> dict[str, Any]:
    impls: list[Impl | None] = [
        implementations(None)[0],
        *([] if args.no_baseline else [None]),
        *implementations(args.dora_venv)[1:],
    ]
    out: dict[str, Any] = {"receivers": _ints(args.receivers), "sizes": args.sizes, "targets": {}}
    for n in out["receivers"]:
        for i in range(args.runs):
            for impl in impls:
                name = impl.name if impl else "zmq"
                slot = out["targets"].setdefault(name, {}).setdefault(str(n), {"runs": [], "errors": []})
                r = _attempt(
                    slot["errors"], f"fanout x{n} {name}", log, _fan_once, impl, n, args.sizes, params, args.keep
                )
                if r is None:
                    continue
                slot["runs"].append(r)
                lost = sum(s["lost"] + s["latency_lost"] for s in r["sizes"].values())
                log(
                    f"(run {i + 1}/{args.runs}) fanout x{n:<3} {name:<9} ok in {r['wall_s']:5.1f} s"
                    + (f"  {lost} lost" if lost else "")
                )
    for per_n in out["targets"].values():
        for slot in per_n.values():
            if slot["runs"]:
                slot["median"] = _median_dicts([r["sizes"] for r in slot["runs"]])
    return out


# ---- start-up and stop -------------------------------------------------------------------


def _firsts(evs: list[Event]) -> dict[str, Event]:
    return {e.node: e for e in evs if e.what == "first"}


def fleet_once(
    impl: Impl, sinks: int, keep: bool, on_idle: Callable[[Fleet, dict[int, str]], Any] | None = None
) -> dict[str, Any]:
    """Start one source + ``sinks`` sinks, wait for every first message, (measure), STOP."""
    with _Workdir(keep) as wd:
        yml = scale_flows.write(wd, scale_flows.fleet(sinks), f"1 source + {sinks} sinks")
        with Fleet([*impl.cli, str(yml)], impl.env(), wd) as f:
            evs = f.await_events(
                lambda e: len(_firsts(e)) >= sinks + 1,
                _FIRST_TIMEOUT_S,
                f"{impl.name} {sinks + 1} nodes' first messages",
            )
            (wd / QUIET_FILE).touch()
            idle = None
            if on_idle is not None:
                time.sleep(_SETTLE_S)  # the last ticks drain: what is measured is idle
                idle = on_idle(f, {e.pid: e.node for e in evs})
            stop_error = ""
            try:
                stop_s = f.stop(_STOP_TIMEOUT_S)
            except FleetFailed as exc:  # the start-up is measured: keep it, say the stop failed
                stop_s, stop_error = math.nan, str(exc)[-2000:]
            evs = f.events()
        firsts = _firsts(evs)
        starts = {e.node: e.t for e in evs if e.what == "start"}
        made = {e.node: e.t for e in evs if e.what == "node"}
        result = {
            "nodes": sinks + 1,
            "first_all_s": (max(e.t for e in firsts.values()) - f.t_run) / 1e9,
            "first_median_s": _median([(e.t - f.t_run) / 1e9 for e in firsts.values()]),
            "spawn_last_s": (max(starts.values()) - f.t_run) / 1e9 if starts else math.nan,
            "import_node_median_s": _median([(made[k] - starts[k]) / 1e9 for k in made if k in starts]),
            "stop_s": stop_s,
            "stop_error": stop_error,
            "saw_stop": sum(e.what == "stop" for e in evs),
            "wall_s": (f.t_exit - f.t_run) / 1e9,
            "cpu_s": f.cpu_s,
            "returncode": f.returncode,
            "leaked": len(f.leaked),
        }
        if idle is not None:
            result["memory"] = idle
        return result


def measure_startup(args: argparse.Namespace, log: Log) -> dict[str, Any]:
    out: dict[str, Any] = {"sinks": _ints(args.nodes), "targets": {}}
    for n in out["sinks"]:
        for i in range(args.runs):
            for impl in [*implementations(args.dora_venv), START_FLOOR]:
                slot = out["targets"].setdefault(impl.name, {}).setdefault(str(n), {"runs": [], "errors": []})
                r = _attempt(slot["errors"], f"startup {n + 1} nodes {impl.name}", log, fleet_once, impl, n, args.keep)
                if r is None:
                    continue
                slot["runs"].append(r)
                log(
                    f"(run {i + 1}/{args.runs}) startup {n + 1:>3} nodes {impl.name:<9} "
                    f"first-all {r['first_all_s']:6.2f} s, "
                    f"stop {r['stop_s']:5.2f} s, cpu {r['cpu_s']:6.2f} s"
                )
    for per_n in out["targets"].values():
        for slot in per_n.values():
            if slot["runs"]:
                slot["median"] = _median_dicts(slot["runs"])
    return out


# ---- memory ------------------------------------------------------------------------------


def _idle_memory(f: Fleet, pids: dict[int, str]) -> dict[str, Any]:
    """Every process of the tree, by role: the run command, source, sinks, other."""
    procs = sample(f.processes(), full=True)
    roles: dict[str, list[dict[str, Any]]] = {}
    for pid, d in procs.items():
        node = pids.get(pid)
        role = "run" if pid == f.proc.pid else "sink" if node and node.startswith("sink") else node or "other"
        roles.setdefault(role, []).append(d)
    summary: dict[str, Any] = {}
    for role, ds in roles.items():
        summary[role] = {"count": len(ds)}
        for k in ("rss", "uss", "pss"):
            vals = [d[k] for d in ds if d.get(k) is not None]
            summary[role][f"{k}_MB"] = _median(vals) / 1e6 if vals else math.nan
    summary["total"] = {
        "count": len(procs),
        **{f"{k}_MB": sum(d.get(k) or 0 for d in procs.values()) / 1e6 for k in ("rss", "uss", "pss")},
    }
    summary["processes"] = [{"pid": pid, "node": pids.get(pid), **d} for pid, d in procs.items()]
    return summary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _services(impl: Impl, wd: Path) -> list[tuple[str, list[str], str | None]]:
    """(name, command, readiness line) of a coordinator and a daemon on their own."""
    port, port2 = _free_port(), _free_port()
    if impl.api == "dora":
        dora = impl.cli[0]
        return [
            ("coordinator", [dora, "coordinator", "--port", str(port), "--store", "memory"], None),
            (
                "daemon",
                [
                    dora,
                    "daemon",
                    "--coordinator-port",
                    str(port),
                    "--local-listen-port",
                    str(port2),
                    "--machine-id",
                    "m1",
                ],
                None,
            ),
        ]
    py = [sys.executable, "-m", "dora_zmq"]
    addr = f"tcp://127.0.0.1:{port}"
    return [
        ("coordinator", [*py, "coordinator", "--bind", addr], "coordinator listening"),
        (
            "daemon",
            [*py, "daemon", "--machine-id", "m1", "--coordinator", addr, "--run-dir", str(wd / "run")],
            "connecting",
        ),
    ]


def services_memory(impl: Impl, keep: bool, settle_s: float = 3.0) -> dict[str, Any]:
    """RSS/USS/PSS of a coordinator and a daemon, idle, connected to each other."""
    out: dict[str, Any] = {}
    with _Workdir(keep) as wd:
        fleets = []
        try:
            services = _services(impl, wd)
            for name, cmd, ready in services:
                f = Fleet(cmd, impl.env(), wd, name).__enter__()
                fleets.append(f)
                if ready is not None:
                    _await_log(f, ready, 60.0)
            time.sleep(settle_s)  # registration done, both idle
            for (name, _, _), f in zip(services, fleets):
                procs = sample(f.processes(), full=True)
                out[name] = {
                    "count": len(procs),
                    **{f"{k}_MB": sum(d.get(k) or 0 for d in procs.values()) / 1e6 for k in ("rss", "uss", "pss")},
                    "alive": not f.exited.is_set(),
                }
        finally:
            for f in reversed(fleets):
                f.__exit__(None, None, None)
    return out


def _await_log(f: Fleet, pattern: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while pattern not in f.tail(200):
        if f.exited.is_set() or time.monotonic() > deadline:
            raise FleetFailed(f"{f.cmd[:4]} never logged {pattern!r}:\n{f.tail()}")
        time.sleep(0.05)


def measure_memory(args: argparse.Namespace, log: Log) -> dict[str, Any]:
    out: dict[str, Any] = {"sinks": _ints(args.memory_sinks), "targets": {}, "imports": {}}
    for impl in implementations(args.dora_venv):
        t = out["targets"].setdefault(impl.name, {"dataflows": {}, "errors": []})
        for n in out["sinks"]:
            r = _attempt(
                t["errors"], f"memory {n + 1} nodes {impl.name}", log, fleet_once, impl, n, args.keep, _idle_memory
            )
            if r is None:
                continue
            t["dataflows"][str(n + 1)] = r["memory"]
            log(f"memory {n + 1:>3} nodes {impl.name:<9} total RSS {r['memory']['total']['rss_MB']:7.1f} MB")
        svc = _attempt(
            t["errors"],
            f"memory coordinator/daemon {impl.name}",
            log,
            services_memory,
            impl,
            args.keep,
            1.0 if args.quick else 3.0,
        )
        if svc is not None:
            t["services"] = svc
    repeat = 1 if args.quick else 3
    statements = ("pass", "from dora_zmq import Node") if args.quick else scale_imports.STATEMENTS
    out["imports"]["dora_zmq"] = {
        "cost": scale_imports.cost(sys.executable, statements, repeat),
        "importtime": scale_imports.importtime(sys.executable, repeat=repeat),
    }
    if args.dora_venv:
        py = str(args.dora_venv / "bin" / "python")
        out["imports"]["dora-rs"] = {"cost": scale_imports.cost(py, scale_imports.DORA_RS_STATEMENTS, repeat)}
    log("memory: import costs measured")
    return out


# ---- soak --------------------------------------------------------------------------------


def soak_once(impl: Impl, seconds: float, rate: float, sample_s: float, keep: bool) -> dict[str, Any]:
    with _Workdir(keep) as wd:
        yml = scale_flows.write(wd, scale_flows.soak(), "soak: source -> 3 relays -> sink")
        env = impl.env()
        env[SOAK_ENV] = json.dumps({"rate": rate, "seconds": seconds, "size": 64})
        series: list[dict[str, Any]] = []
        with Fleet([*impl.cli, str(yml)], env, wd) as f:
            evs = f.await_events(
                lambda e: any(x.node == "sink" and x.what == "first" for x in e),
                _FIRST_TIMEOUT_S,
                f"{impl.name} soak start",
            )
            t0 = time.monotonic()
            names = {e.pid: e.node for e in evs}
            while not any(e.what == "sent" for e in f.events()) and not f.exited.is_set():
                series.append({"t_s": time.monotonic() - t0, "procs": sample(f.processes())})
                if time.monotonic() - t0 > seconds + _STOP_TIMEOUT_S:
                    raise FleetFailed(f"soak {impl.name}: the source never finished\n{f.tail()}")
                end = time.monotonic() + sample_s
                while time.monotonic() < end and not f.exited.is_set():
                    time.sleep(min(0.2, sample_s))
            wall = f.wait_exit(_STOP_TIMEOUT_S)
            names.update({e.pid: e.node for e in f.events()})
        sink = wd / "sink.json"
        if not sink.exists():
            raise FleetFailed(f"soak {impl.name}: no sink.json (exit {f.returncode})\n{f.tail()}")
        res = json.loads(sink.read_text())
    root = f.proc.pid
    per: dict[str, Any] = {}
    for s in series:
        for pid, d in s["procs"].items():
            name = "run" if pid == root else names.get(pid) or f"{d['cmd'].split()[0]}:{pid}"
            p = per.setdefault(name, {"t_s": [], "rss_MB": [], "fds": [], "threads": []})
            p["t_s"].append(round(s["t_s"], 2))
            p["rss_MB"].append(d["rss"] / 1e6)
            p["fds"].append(d["fds"])
            p["threads"].append(d["threads"])
    summary = {
        n: {
            **{f"{k}_start": p[k][0] for k in ("rss_MB", "fds", "threads")},
            **{f"{k}_end": p[k][-1] for k in ("rss_MB", "fds", "threads")},
            "rss_MB_max": max(p["rss_MB"]),
            "samples": len(p["t_s"]),
        }
        for n, p in per.items()
    }
    return {
        "seconds": seconds,
        "rate": rate,
        "sink": res,
        "wall_s": wall,
        "cpu_s": f.cpu_s,
        "lost": res["sent"] - res["received"],
        "processes": summary,
        "series": per,
    }


def measure_soak(args: argparse.Namespace, log: Log) -> dict[str, Any]:
    seconds = args.minutes * 60
    sample_s = args.sample_s or max(1.0, seconds / 100)
    out: dict[str, Any] = {"minutes": args.minutes, "rate": args.rate, "sample_s": sample_s, "targets": {}}
    for impl in implementations(args.dora_venv):
        slot = out["targets"].setdefault(impl.name, {"errors": []})
        log(f"soak {impl.name}: {args.rate:.0f} msgs/s for {args.minutes:g} min ...")
        r = _attempt(slot["errors"], f"soak {impl.name}", log, soak_once, impl, seconds, args.rate, sample_s, args.keep)
        if r is None:
            continue
        slot["result"] = r
        s = r["sink"]
        log(
            f"soak {impl.name}: {s['received']}/{s['sent']} received, {s['gaps']} gaps, "
            f"p50 {s['latency']['p50_us']:.0f} µs"
        )
    return out


# ---- entry (from run.py) -----------------------------------------------------------------


def measure(args: argparse.Namespace, params: Params, variants: list[str], log: Log) -> dict[str, Any]:
    """Run the requested scale variants (``SCALE`` names, in order); ``{variant: result}``."""
    out: dict[str, Any] = {}
    for v in variants:
        if v == "fanout":
            out[v] = measure_fanout(args, params, log)
        elif v == "startup":
            out[v] = measure_startup(args, log)
        elif v == "memory":
            out[v] = measure_memory(args, log)
        elif v == "soak":
            out[v] = measure_soak(args, log)
    return out


def failed(results: dict[str, Any]) -> list[str]:
    """What produced no result at all (for run.py's exit code)."""
    bad = []
    for v, r in results.items():
        for name, t in r.get("targets", {}).items():
            if v in ("fanout", "startup"):
                bad += [f"{v}/{name}/{n}" for n, slot in t.items() if not slot["runs"]]
            elif v == "memory" and not t.get("dataflows"):
                bad.append(f"{v}/{name}")
            elif v == "soak" and "result" not in t:
                bad.append(f"{v}/{name}")
    return bad
