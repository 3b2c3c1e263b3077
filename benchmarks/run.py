#!/usr/bin/env python3
"""dora_zmq benchmark: latency and throughput against raw pyzmq (and dora-rs), in one run.

    python benchmarks/run.py                         # all sizes, same host, medians of 3 runs
    python benchmarks/run.py --quick --sizes 8,4096  # CI smoke (< 60 s)
    python benchmarks/run.py --variant chain5 --sizes 8,4096,409600
    python benchmarks/run.py --variant tracing       # cost of tracing per hop (+ tracing-chain5)
    python benchmarks/run.py --variant tcp-netns     # two network namespaces, tcp (root)
    python benchmarks/run.py --dora-venv /tmp/dora-venv   # + dora-rs 1.1.0
    python benchmarks/run.py --variant scale --minutes 10    # fanout, startup, memory, chain10, soak (scale.py)

Method (shared/peer-bench): payload a pyarrow UInt8Array; latency = 5 warm-ups + 100 samples
per size paced max(5 ms, 2 ns/B), one-way, CLOCK_MONOTONIC; throughput = bursts of
clamp(200 MB / size, 50, 5000) messages, delivered msgs/s and losses. dora_zmq runs as a real
dataflow (``python -m dora_zmq run``); the baseline is raw PUB/SUB over ipc with the same
payloads, Arrow IPC framing and protocol. Targets are interleaved run by run.
``tcp-netns`` puts the sender and the receiver on two network namespaces on a bridge (made
and always deleted here): dora_zmq as coordinator + daemon on h1 and a daemon on h2, raw
PUB/SUB over tcp between the same two. Namespaces share CLOCK_MONOTONIC: one clock still.
``tracing`` (and ``tracing-chain5``) runs dora_zmq with tracing exported to a local OTLP
collector, its latency messages alternating traced / untraced in each run (drift hits both
classes alike): added per hop = traced p50 - untraced p50 (/ hops); bursts are all traced and
compared with runs of dora_zmq with tracing off.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale
import scale_report
from common import (
    ALTERNATE_ENV,
    SIZES,
    ZERO_COPY_ENV,
    Params,
    dump_json,
    human,
    median_of_runs,
    paired_tracing,
    parse_sizes,
)
from meta import cpu_busy, machine_info, source_fingerprint, versions
from netns import NetnsError, TwoHosts, unavailable
from otlp_sink import OtlpSink
from report import latency_table, ratios, throughput_table, tracing_table
from rich.console import Console
from rich.markup import escape
from targets import (
    Target,
    TargetFailed,
    check_dora_venv,
    dora_rs_targets,
    dora_zmq_cluster_target,
    dora_zmq_target,
    run_target,
    zmq_target,
)
from validation import measure as measure_validation
from validation import validation_table

HERE = Path(__file__).resolve().parent
# variant -> links in the chain
VARIANTS = {
    "same-host": 1,
    "zero-copy": 1,
    "chain5": 4,
    "chain10": 9,
    "tracing": 1,
    "tracing-chain5": 4,
    "tcp-netns": 1,
}
SCALE_SIZES = [8, 4096, 409600]  # default of fanout and chain10 when --sizes is not given
TRACING = ("tracing", "tracing-chain5")  # dora_zmq with tracing off, and alternating traced / untraced
NETNS = "tcp-netns"
PRIMARY = "dora_zmq"
TRACED = "dora_zmq+otel"
ZERO_COPY = "dora_zmq samples"
_BUSY_WARN = 0.25  # CPU share used by others before we start
_VALIDATION_MAX = 4_096_000  # larger payloads add seconds of array building to the validation table

console = Console(width=None if sys.stdout.isatty() else 220, highlight=False)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--sizes",
        type=parse_sizes,
        default=None,
        help="comma-separated payload sizes in bytes (or 4KiB, 16MiB); default: all 11 peer sizes "
        f"({', '.join(map(human, SCALE_SIZES))} for the scale variants alone)",
    )
    ap.add_argument("--quick", action="store_true", help="fewer samples and smaller bursts, 1 run (CI smoke)")
    ap.add_argument("--runs", type=int, default=None, help="repeat N times and report medians (default 3, quick 1)")
    ap.add_argument(
        "--variant",
        default="same-host",
        help=f"comma-separated: {', '.join(VARIANTS)} (tracing needs dora_zmq.tracing, tcp-netns root); "
        f"scale variants {', '.join(scale.SCALE)}, or scale: all of them and chain10",
    )
    ap.add_argument(
        "--dora-venv", type=Path, help="a virtualenv with dora-rs and dora-rs-cli 1.1.0: also measure dora-rs"
    )
    ap.add_argument(
        "--dora-configs",
        default="default,pool256",
        help="dora-rs configurations: default (8 MB shm pool), pool256 (256 MB pool)",
    )
    ap.add_argument("--no-baseline", action="store_true", help="skip raw pyzmq (no ratios to it)")
    ap.add_argument("--out", type=Path, default=HERE / "results", help="directory for the JSON result")
    ap.add_argument("--keep", action="store_true", help="keep each run's working directory (YAML, logs)")
    ap.add_argument(
        "--no-validation",
        action="store_true",
        help="skip the in-process table of what validating received values costs per message",
    )
    ap.add_argument("-v", "--verbose", action="store_true")
    scale.add_arguments(ap)
    args = ap.parse_args(argv)
    names = [v.strip() for v in args.variant.split(",") if v.strip()]
    args.variants = [x for v in names for x in (scale.ALL if v == "scale" else [v])]
    bad = [v for v in args.variants if v not in VARIANTS and v not in scale.SCALE]
    if bad:
        ap.error(f"unknown variant(s) {bad}; choose from {list(VARIANTS) + list(scale.SCALE)} or scale")
    if args.sizes is None:
        args.sizes = SCALE_SIZES if set(args.variants) <= set(scale.ALL) else list(SIZES)
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    if not args.sizes:
        ap.error("--sizes is empty")
    return args


def open_hosts(stack: ExitStack) -> TwoHosts | None:
    """The two namespace hosts of ``tcp-netns`` (deleted when ``stack`` closes), or None: skip."""
    why = unavailable()
    if why is None:
        try:
            net = stack.enter_context(TwoHosts())
        except NetnsError as exc:
            why = str(exc)
        else:
            if net.stale_removed:
                console.print(
                    f"[yellow]removed namespaces left by a killed benchmark: {', '.join(net.stale_removed)}[/]"
                )
            return net
    console.print(f"[yellow]variant {NETNS} skipped: {escape(why)}[/]")
    return None


def plan(args: argparse.Namespace, sink: OtlpSink | None, net: TwoHosts | None = None) -> dict[str, list[Target]]:
    """The targets of every variant that can run here (skips are printed)."""
    dora = dora_rs_targets(args.dora_venv, args.dora_configs.split(",")) if args.dora_venv else []
    base = [] if args.no_baseline else [zmq_target()]
    out: dict[str, list[Target]] = {}
    for variant in args.variants:
        if variant == NETNS:
            if net is None:
                continue  # the reason was printed by open_hosts
            if dora:
                console.print(f"[yellow]{NETNS}: dora-rs is not measured across hosts[/]")
            out[variant] = [dora_zmq_cluster_target(net.hosts), *([] if args.no_baseline else [zmq_target(net.hosts)])]
        elif variant in TRACING:
            if sink is None:
                console.print(f"[yellow]variant {variant} skipped: dora_zmq.tracing does not exist in this checkout[/]")
                continue
            out[variant] = [dora_zmq_target(), dora_zmq_target(TRACED, {**sink.env(), ALTERNATE_ENV: "1"}), *base]
        elif variant == "zero-copy":
            out[variant] = [dora_zmq_target(ZERO_COPY, {ZERO_COPY_ENV: "1"}), dora_zmq_target(), *base, *dora]
        else:
            out[variant] = [dora_zmq_target(), *base, *dora]
    return out


def measure(args: argparse.Namespace, params: Params, todo: dict[str, list[Target]]) -> dict[str, Any]:
    """Run every target of every variant ``args.runs`` times, interleaved; collect results."""
    results: dict[str, Any] = {
        v: {"links": VARIANTS[v], "nodes": VARIANTS[v] + 1, "targets": {t.name: {"runs": [], "errors": []} for t in ts}}
        for v, ts in todo.items()
    }
    for i in range(args.runs):
        for variant, targets in todo.items():
            for target in targets:
                tag = f"[run {i + 1}/{args.runs}]"
                slot = results[variant]["targets"][target.name]
                try:
                    r = run_target(target, args.sizes, params, VARIANTS[variant], keep=args.keep)
                except TargetFailed as exc:
                    slot["errors"].append(str(exc))
                    console.print(f"[red]{escape(tag)} {variant} {target.name}: FAILED[/red]\n{escape(str(exc))}")
                    continue
                slot["runs"].append(r)
                lost = sum(t["lost"] for t in r["throughput"].values())
                console.print(
                    f"{escape(tag)} {variant:<14} {target.name:<16} ok in {r['wall_s']:5.1f} s"
                    + (f"  [yellow]{lost} lost in bursts[/]" if lost else "")
                    + (f"  [red]{r['size_mismatch']} size mismatches[/]" if r["size_mismatch"] else "")
                    + (
                        f"  [yellow]{r['class_mismatch']} latency samples dropped"
                        " (received in the wrong tracing state)[/]"
                        if r.get("class_mismatch")
                        else ""
                    )
                )
    for name, variant in results.items():
        primary = next((p for p in (TRACED, ZERO_COPY) if p in variant["targets"]), PRIMARY)
        if name in TRACING and variant["targets"].get(TRACED, {}).get("runs"):
            variant["tracing"] = paired_tracing(variant["targets"][TRACED]["runs"], VARIANTS[name])
        medians = {n: median_of_runs(t["runs"]) for n, t in variant["targets"].items() if t["runs"]}
        for n, m in medians.items():
            variant["targets"][n]["median"] = m
        variant["primary"] = primary
        variant["ratios"] = ratios(medians, primary)
    return results


def show(results: dict[str, Any], runs: int, doc_sink: dict[str, int] | None = None) -> None:
    """Print the tables of every variant."""
    for name, variant in results.items():
        medians = {n: t["median"] for n, t in variant["targets"].items() if "median" in t}
        if not medians:
            continue
        what = f"{name} ({variant['nodes']} nodes), median of {runs} run(s)"
        console.print()
        console.print(latency_table(f"One-way latency, paced: {what}", medians, variant["primary"]))
        console.print(throughput_table(f"Throughput, bursts: {what}", medians, variant["primary"]))
        if name in TRACING and variant.get("tracing"):
            title = (
                f"Tracing cost: {what}; traced and untraced messages alternating in each run, "
                f"added = traced − untraced p50 / {variant['links']} hop(s), median over runs"
            )
            console.print(tracing_table(title, variant["tracing"], medians.get(PRIMARY), medians.get(TRACED)))
            for k, c in variant["tracing"].items():
                console.print(f"tracing on, {human(int(k))}: {c['added_p50_us_per_hop']:+.1f} µs per hop (p50)")
            sink = doc_sink or {}
            console.print(
                f"OTLP sink received {sink.get('requests', 0)} export request(s), {sink.get('bytes', 0):,} bytes"
            )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    params = Params.quick() if args.quick else Params.full()
    started = time.monotonic()
    doc: dict[str, Any] = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": [sys.executable, *sys.argv],
        "machine": machine_info(),
        "versions": versions(),
        "source_at_start": source_fingerprint(),
        "params": asdict(params),
        "sizes": args.sizes,
        "runs": args.runs,
        "quick": args.quick,
    }
    if args.dora_venv:
        try:
            doc["versions"].update(check_dora_venv(args.dora_venv))
        except ValueError as exc:
            console.print(f"[red]cannot measure dora-rs: {escape(str(exc))}[/red]")
            return 2
    doc["cpu_busy_before"] = busy = cpu_busy()
    if busy > _BUSY_WARN:
        console.print(f"[yellow]warning: the machine is {busy:.0%} busy before the benchmark; figures will be noisy[/]")
    has_tracing = importlib.util.find_spec("dora_zmq.tracing") is not None
    scaled = [v for v in args.variants if v in scale.SCALE]
    args.variants = [v for v in args.variants if v not in scale.SCALE]
    with ExitStack() as stack:
        sink = stack.enter_context(OtlpSink()) if set(TRACING) & set(args.variants) and has_tracing else None
        net = open_hosts(stack) if NETNS in args.variants else None
        if net is not None:
            doc["netns"] = {
                "hosts": {h.name: {"ns": h.ns, "ip": h.ip} for h in net.hosts},
                "link": "veth pair via a bridge",
            }
        todo = plan(args, sink, net) if args.variants else {}
        if not todo and not scaled:
            return 2
        console.print(
            f"sizes {', '.join(human(s) for s in args.sizes)}; {args.runs} run(s); "
            f"{'quick' if args.quick else 'full'} method; targets: "
            + "; ".join(f"{v}: {', '.join(t.name for t in ts)}" for v, ts in todo.items())
            + (f"; scale: {', '.join(scaled)}" if scaled else "")
        )
        doc["variants"] = measure(args, params, todo)
        if scaled:
            doc["scale"] = scale.measure(args, params, scaled, console.print)
        if sink is not None:
            doc["otlp_sink"] = {"requests": sink.requests, "bytes": sink.bytes}
    doc["wall_s"] = time.monotonic() - started
    doc["cpu_busy_after"] = cpu_busy()
    doc["loadavg_at_end"] = os.getloadavg()
    doc["source_at_end"] = source_fingerprint()
    if doc["source_at_end"] != doc["source_at_start"]:
        console.print("[red]warning: dora_zmq/ or benchmarks/ changed during the run: the figures mix versions[/]")
    show(doc["variants"], args.runs, doc.get("otlp_sink"))
    for table in scale_report.tables(doc.get("scale", {})):
        console.print(table)
    if todo and not args.no_validation:
        # in-process and after the dataflows: it costs a few seconds and disturbs no run
        doc["validation"] = measure_validation([s for s in args.sizes if 0 < s <= _VALIDATION_MAX])
        console.print(validation_table(doc["validation"], human))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    dump_json(str(path), doc)
    failed = [f"{v}/{n}" for v, var in doc["variants"].items() for n, t in var["targets"].items() if not t["runs"]]
    failed += scale.failed(doc.get("scale", {}))
    console.print(f"\nwall time {doc['wall_s']:.0f} s; wrote {os.path.relpath(path)}")
    if (scaled or "chain10" in todo) and not args.no_plots:
        if args.quick:  # a smoke run must not replace the plots README shows
            console.print(f"plots not redrawn after --quick: python benchmarks/scale_plots.py {os.path.relpath(path)}")
        else:
            console.print(scale_report.draw_plots(path, HERE / "plots"))
    if failed:
        console.print(f"[red]no successful run for: {', '.join(failed)}[/red]")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # processes and namespaces were cleaned up on the way out
        console.print("[yellow]interrupted[/]")
        sys.exit(130)
