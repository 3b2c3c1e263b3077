"""Ratios and rich tables from median results (building only; ``run.py`` prints)."""

from __future__ import annotations

import math
from typing import Any

from common import human
from rich.table import Table

Medians = dict[str, dict[str, Any]]  # target name -> median_of_runs() result


def ratios(medians: Medians, primary: str) -> dict[str, dict[str, dict[str, float]]]:
    """``{reference: {size: {"p50": primary/ref, "msgs_per_s": primary/ref}}}`` for every other target.

    Latency ratio < 1 and throughput ratio > 1 mean ``primary`` is better.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    base = medians.get(primary)
    if base is None:
        return out
    for ref, m in medians.items():
        if ref == primary:
            continue
        per_size: dict[str, dict[str, float]] = {}
        for size in _sizes([base, m]):
            k = str(size)
            per_size[k] = {
                "p50": _div(_get(base, "latency", k, "p50_us"), _get(m, "latency", k, "p50_us")),
                "msgs_per_s": _div(_get(base, "throughput", k, "msgs_per_s"), _get(m, "throughput", k, "msgs_per_s")),
            }
        out[ref] = per_size
    return out


def latency_table(title: str, medians: Medians, primary: str) -> Table:
    """p50 / p90 / p99 µs per target and size, and p50 ratios of ``primary`` to the others."""
    table = Table(title=title, title_justify="left")
    table.add_column("size", justify="right")
    for name, m in medians.items():
        table.add_column(f"{name}\np50 / p90 / p99 µs (n)", justify="right")
    refs = [n for n in medians if n != primary]
    for ref in refs:
        table.add_column(f"p50\n{primary}/{ref}", justify="right")
    rat = ratios(medians, primary)
    for size in _sizes(list(medians.values())):
        k = str(size)
        row = [human(size)]
        for m in medians.values():
            la = m["latency"].get(k)
            row.append(f"{_n(la['p50_us'])} / {_n(la['p90_us'])} / {_n(la['p99_us'])} ({la['n']})" if la else "-")
        row += [_ratio(rat[ref][k]["p50"], lower_is_better=True) for ref in refs]
        table.add_row(*row)
    return table


def throughput_table(title: str, medians: Medians, primary: str) -> Table:
    """Delivered msgs/s, MB/s and losses per target and size, and msgs/s ratios."""
    table = Table(title=title, title_justify="left")
    table.add_column("size", justify="right")
    for name in medians:
        table.add_column(f"{name}\nmsgs/s", justify="right")
        table.add_column("MB/s", justify="right")
        table.add_column("lost", justify="right")
    refs = [n for n in medians if n != primary]
    for ref in refs:
        table.add_column(f"msgs/s\n{primary}/{ref}", justify="right")
    rat = ratios(medians, primary)
    for size in _sizes(list(medians.values())):
        k = str(size)
        row = [human(size)]
        for m in medians.values():
            th = m["throughput"].get(k)
            if th is None:
                row += ["-", "-", "-"]
                continue
            lost = th["lost"]
            row += [_n(th["msgs_per_s"]), _n(th["MB_per_s"]), f"[red]{lost}/{th['sent']}[/red]" if lost else "0"]
        row += [_ratio(rat[ref][k]["msgs_per_s"], lower_is_better=False) for ref in refs]
        table.add_row(*row)
    return table


def tracing_table(title: str, paired: dict[str, Any], off: dict[str, Any] | None, on: dict[str, Any] | None) -> Table:
    """The cost of tracing per size: both classes of the alternating runs, and bursts on/off.

    ``paired`` is :func:`common.paired_tracing`; ``off``/``on`` are the medians of the runs with
    tracing off and of the alternating runs (whose bursts are all traced).
    """
    table = Table(title=title, title_justify="left")
    table.add_column("size", justify="right")
    table.add_column("untraced\np50 / p90 / p99 µs", justify="right")
    table.add_column("traced\np50 / p90 / p99 µs", justify="right")
    table.add_column("added per hop µs\np50 (each run)", justify="right")
    table.add_column("added per hop µs\np90", justify="right")
    table.add_column("p50 vs run off\nper hop µs", justify="right")
    table.add_column("msgs/s\noff", justify="right")
    table.add_column("msgs/s\non", justify="right")
    table.add_column("msgs/s\non/off", justify="right")
    for k, c in sorted(paired.items(), key=lambda kv: int(kv[0])):
        tr, un = c["traced"], c["untraced"]
        each = ", ".join(f"{x:+.0f}" for x in c["added_p50_us_per_hop_runs"])
        separate = (tr["p50_us"] - _get(off or {}, "latency", k, "p50_us")) / c["hops"]
        thr_off, thr_on = _get(off or {}, "throughput", k, "msgs_per_s"), _get(on or {}, "throughput", k, "msgs_per_s")
        table.add_row(
            human(int(k)),
            f"{_n(un['p50_us'])} / {_n(un['p90_us'])} / {_n(un['p99_us'])}",
            f"{_n(tr['p50_us'])} / {_n(tr['p90_us'])} / {_n(tr['p99_us'])}",
            f"[bold]{c['added_p50_us_per_hop']:+.1f}[/] ({each})",
            f"{c['added_p90_us_per_hop']:+.1f}",
            "-" if math.isnan(separate) else f"{separate:+.1f}",
            _n(thr_off),
            _n(thr_on),
            _ratio(_div(thr_on, thr_off), lower_is_better=False),
        )
    return table


def _sizes(results: list[dict[str, Any]]) -> list[int]:
    return sorted({int(k) for r in results for part in ("latency", "throughput") for k in r.get(part, {})})


def _get(m: dict[str, Any], part: str, size: str, key: str) -> float:
    return float(m.get(part, {}).get(size, {}).get(key, math.nan))


def _div(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def _n(v: float) -> str:
    """Compact number: 62.1k, 1,434, 0.52."""
    if v is None or math.isnan(v):
        return "-"
    if abs(v) >= 100_000:
        return f"{v / 1000:,.0f}k"
    if abs(v) >= 10_000:
        return f"{v / 1000:.1f}k"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}" if abs(v) >= 1 else f"{v:.2f}"


def _ratio(r: float, lower_is_better: bool) -> str:
    if math.isnan(r):
        return "-"
    good = r <= 1.0 if lower_is_better else r >= 1.0
    return (
        f"[{'green' if good else 'yellow'}]{r:.2f}x[/]" if r >= 0.1 else f"[{'green' if good else 'yellow'}]{r:.2g}x[/]"
    )
