"""Tables of the scale variants (building only; ``run.py`` prints), and the plots' entry point.

python benchmarks/scale_report.py benchmarks/results/<timestamp>.json   # the tables as Markdown (README)
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

from common import human
from report import _n
from scale_imports import DORA_RS_STATEMENTS, STATEMENTS, group_of
from rich.table import Table
from rich.text import Text


def _ratio(a: float, b: float) -> str:
    return "-" if not b or math.isnan(a) or math.isnan(b) else f"{a / b:.2f}x"


def tables(scale: dict[str, Any]) -> list[Table]:
    """Every table of the scale results present in ``scale`` (``doc["scale"]``)."""
    out: list[Table] = []
    if "fanout" in scale:
        out += fanout_tables(scale["fanout"])
    if "startup" in scale:
        out.append(startup_table(scale["startup"]))
    if "memory" in scale:
        out += memory_tables(scale["memory"])
    if "soak" in scale:
        out.append(soak_table(scale["soak"]))
    return out


def _med(t: dict[str, Any], n: int) -> dict[str, Any] | None:
    m: dict[str, Any] | None = t.get(str(n), {}).get("median")
    return m


def _columns(t: Table, names: list[str], per_target: list[str], ratios: list[str]) -> list[str]:
    """Columns ``per_target`` for each target, then ``ratios`` of dora_zmq to each other one; the others."""
    for name in names:
        for i, c in enumerate(per_target):
            t.add_column(f"{name}\n{c}" if i == 0 else c, justify="right")
    others = [x for x in names if x != "dora_zmq"]
    for o in others:
        for c in ratios:
            t.add_column(f"{c}\ndora_zmq/{o}", justify="right")
    return others


def fanout_tables(r: dict[str, Any]) -> list[Table]:
    names = list(r["targets"])
    out = []
    for size in r["sizes"]:
        k = str(size)
        t = Table(
            title=f"Fan-out, {human(size)}: p50 to the LAST receiver µs (median receiver's p50), rate delivered to all",
            title_justify="left",
        )
        t.add_column("receivers", justify="right")
        others = _columns(t, names, ["p50 last (each) µs", "msgs/s\nto all", "lost"], ["p50 last", "msgs/s"])
        for n in r["receivers"]:
            row = [str(n)]
            for name in names:
                m = _med(r["targets"][name], n)
                s = m.get(k) if m else None
                if not s:
                    row += ["-", "-", "-"]
                    continue
                lost = int(s["lost"] + s["latency_lost"])
                row += [
                    f"{_n(s['p50_last_us'])} ({_n(s['p50_receiver_median_us'])})",
                    _n(s["msgs_per_s"]),
                    f"[red]{lost}[/]" if lost else "0",
                ]
            base = (_med(r["targets"].get("dora_zmq", {}), n) or {}).get(k, {})
            for o in others:
                s = (_med(r["targets"][o], n) or {}).get(k, {})
                row += [
                    _ratio(base.get("p50_last_us", math.nan), s.get("p50_last_us", math.nan)),
                    _ratio(base.get("msgs_per_s", math.nan), s.get("msgs_per_s", math.nan)),
                ]
            t.add_row(*row)
        out.append(t)
    return out


def startup_table(r: dict[str, Any]) -> Table:
    names = list(r["targets"])
    t = Table(
        title="Start-up and stop: one source + N sinks; run -> every node's first message, STOP -> exit, "
        "CPU of the tree",
        title_justify="left",
    )
    t.add_column("nodes", justify="right")
    others = _columns(
        t, names, ["first-all s", "stop s", "CPU s", "import s\n(median node)"], ["first-all", "stop", "CPU"]
    )
    for n in r["sinks"]:
        row = [str(n + 1)]
        for name in names:
            m = _med(r["targets"][name], n)
            stop = "[red]no exit[/]" if m and m.get("stop_error") else _n(m["stop_s"]) if m else "-"
            row += ["-"] * 4 if not m else [_n(m["first_all_s"]), stop, _n(m["cpu_s"]), _n(m["import_node_median_s"])]
        base = _med(r["targets"].get("dora_zmq", {}), n) or {}
        for o in others:
            m = _med(r["targets"][o], n) or {}
            row += [_ratio(base.get(x, math.nan), m.get(x, math.nan)) for x in ("first_all_s", "stop_s", "cpu_s")]
        t.add_row(*row)
    return t


def memory_tables(r: dict[str, Any]) -> list[Table]:
    t = Table(
        title="Memory of idle dataflows (median per process of a role; total = the whole tree), MB",
        title_justify="left",
    )
    t.add_column("target")
    t.add_column("nodes", justify="right")
    t.add_column("role (count)")
    for k in ("RSS", "USS", "PSS"):
        t.add_column(k, justify="right")
    for name, tr in r["targets"].items():
        for nodes, d in tr.get("dataflows", {}).items():
            for role in ("run", "source", "sink", "other", "total"):
                if role in d:
                    x = d[role]
                    t.add_row(name, nodes, f"{role} ({x['count']})", _n(x["rss_MB"]), _n(x["uss_MB"]), _n(x["pss_MB"]))
        for svc, x in tr.get("services", {}).items():
            t.add_row(name, "-", f"{svc} alone", _n(x["rss_MB"]), _n(x["uss_MB"]), _n(x["pss_MB"]))
    out = [t]
    imp = Table(
        title="Import cost in a fresh interpreter (median of 3; --quick: once, fewer): seconds, RSS after, RSS added",
        title_justify="left",
    )
    imp.add_column("python")
    imp.add_column("statement")
    imp.add_column("s", justify="right")
    imp.add_column("RSS MB", justify="right")
    imp.add_column("added MB", justify="right")
    imp.add_column("modules", justify="right")
    for who, d in r.get("imports", {}).items():
        order = [*STATEMENTS, *DORA_RS_STATEMENTS]
        for stmt, c in sorted(d.get("cost", {}).items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99):
            if "error" in c:
                imp.add_row(who, stmt, "error", "", "", "")
            else:
                imp.add_row(who, stmt, f"{c['seconds']:.3f}", _n(c["rss_MB"]), _n(c["added_MB"]), str(c["modules"]))
    out.append(imp)
    it = r.get("imports", {}).get("dora_zmq", {}).get("importtime")
    if it:
        g = Table(
            title=f"python -X importtime '{it['statement']}': self time by module group "
            f"(total {it['total_ms']:.0f} ms)",
            title_justify="left",
        )
        g.add_column("module group")
        g.add_column("ms", justify="right")
        g.add_column("a plain node could defer it: imported via")
        for name, ms in sorted(it["groups_ms"].items(), key=lambda kv: -kv[1])[:25]:  # JSON sorted the keys
            g.add_row(name, f"{ms:.1f}", _via(it.get("chains", {}).get(name), name) if name in it["deferrable"] else "")
        g.add_row("[bold]deferrable, total[/]", f"{sum(it['deferrable'].values()):.1f}", "")
        out.append(g)
    return out


def _via(chain: list[str] | None, group: str) -> str:
    """``dora_zmq.node._node -> dora_zmq.tracing``: the importers down to the group's first module."""
    if not chain:
        return "yes"
    cut = next((i for i, m in enumerate(chain) if group_of(m) == group), len(chain) - 1)
    return "yes: " + " -> ".join(chain[1 : cut + 1][-5:])


def soak_table(r: dict[str, Any]) -> Table:
    t = Table(
        title=f"Soak: source -> 3 relays -> sink, {r['rate']:.0f} msgs/s for {r['minutes']:g} min; "
        "per process start -> end",
        title_justify="left",
    )
    for c in ("target", "process", "RSS MB start -> end (max)", "fds", "threads", "received / sent", "p50 / p99 µs"):
        t.add_column(c, justify="right" if c not in ("target", "process") else "left")
    for name, tr in r["targets"].items():
        res = tr.get("result")
        if not res:
            t.add_row(name, "FAILED", "", "", "", "", "")
            continue
        s = res["sink"]
        first = True
        for proc, p in sorted(res["processes"].items()):
            t.add_row(
                name if first else "",
                proc,
                f"{p['rss_MB_start']:.1f} -> {p['rss_MB_end']:.1f} ({p['rss_MB_max']:.1f})",
                f"{p['fds_start']} -> {p['fds_end']}",
                f"{p['threads_start']} -> {p['threads_end']}",
                f"{s['received']} / {s['sent']}" + (f" [red]{s['gaps']} gaps[/]" if s["gaps"] else "") if first else "",
                f"{_n(s['latency']['p50_us'])} / {_n(s['latency']['p99_us'])}" if first else "",
            )
            first = False
    return t


def draw_plots(result: Path, out_dir: Path) -> str:
    """Draw the PNGs of ``result`` into ``out_dir`` if matplotlib is installed; a line saying what happened."""
    if importlib.util.find_spec("matplotlib") is None:
        return "plots skipped: matplotlib is not installed (pip install -e '.[bench]')"
    import scale_plots

    files = scale_plots.draw(result, out_dir)
    return f"plots: {', '.join(str(f) for f in files)}"


def markdown(table: Table) -> str:
    """A table as GitHub Markdown (markup stripped, header lines joined)."""
    heads = [str(c.header).replace("\n", " ") for c in table.columns]
    lines = [f"{table.title}", "", "| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for row in zip(*(c._cells for c in table.columns)):
        lines.append("| " + " | ".join(Text.from_markup(str(x)).plain for x in row) + " |")
    return "\n".join(lines)


def main() -> None:
    import argparse
    import json
    import sys

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("result", type=Path, help="a benchmarks/results/*.json written by run.py")
    doc = json.loads(ap.parse_args().result.read_text())
    out = [markdown(t) for t in tables(doc.get("scale", {}))]
    chain = doc.get("variants", {}).get("chain10")
    if chain:
        from report import latency_table, throughput_table

        medians = {n: t["median"] for n, t in chain["targets"].items() if "median" in t}
        what = f"chain10 ({chain['nodes']} nodes), median of {doc['runs']} run(s)"
        out += [markdown(latency_table(f"One-way latency, paced: {what}", medians, chain["primary"]))]
        out += [markdown(throughput_table(f"Throughput, bursts: {what}", medians, chain["primary"]))]
    sys.stdout.write("\n\n".join(out) + "\n")


if __name__ == "__main__":
    main()
