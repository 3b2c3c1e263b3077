"""Draw the scale variants' PNG plots from a results JSON (``run.py`` calls it after a run).

    python benchmarks/scale_plots.py benchmarks/results/<timestamp>.json   # -> benchmarks/plots/*.png

Needs matplotlib (``pip install -e '.[bench]'``). One PNG per variant present in the file:
``fanout.png``, ``startup.png``, ``memory.png``, ``chain10.png``, ``soak.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from common import human  # noqa: E402


def _xy(per_n: dict[str, Any], ns: list[int], get: Any) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for n in ns:
        m = per_n.get(str(n), {}).get("median")
        v = get(m) if m else None
        if v is not None and not math.isnan(v):
            xs.append(n)
            ys.append(v)
    return xs, ys


def _style(ax: Any, title: str, xlabel: str, xscale: str = "", base: int = 10) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    if xscale:
        ax.set_xscale(xscale, base=base)
    ax.grid(True, alpha=0.3)
    ax.legend()


def fanout(r: dict[str, Any], title: str) -> Figure:
    sizes = r["sizes"]
    fig, axes = plt.subplots(2, len(sizes), figsize=(5 * len(sizes), 8), squeeze=False)
    for j, size in enumerate(sizes):
        k = str(size)
        for name, per_n in r["targets"].items():
            xs, ys = _xy(per_n, r["receivers"], lambda m, k=k: m.get(k, {}).get("p50_last_us"))
            axes[0][j].plot(xs, ys, "o-", label=name)
            xs, ys = _xy(per_n, r["receivers"], lambda m, k=k: m.get(k, {}).get("msgs_per_s"))
            axes[1][j].plot(xs, ys, "o-", label=name)
        axes[0][j].set_ylabel("µs")
        axes[0][j].set_yscale("log")  # one receiver to sixteen spans decades
        axes[1][j].set_ylabel("msgs/s")
        _style(axes[0][j], f"{human(size)}: p50 to the last receiver", "receivers", "log", 2)
        _style(axes[1][j], f"{human(size)}: burst msgs/s delivered to all", "receivers", "log", 2)
    fig.suptitle(title)
    return fig


def startup(r: dict[str, Any], title: str) -> Figure:
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    ns = r["sinks"]
    for name, per_n in r["targets"].items():
        for ax, key in zip(axes, ("first_all_s", "stop_s", "cpu_s")):
            xs, ys = _xy(per_n, ns, lambda m, key=key: m.get(key))
            ax.plot([x + 1 for x in xs], ys, "o-", label=name)
    for ax, what in zip(
        axes, ("run -> every node's first message (s)", "STOP -> exit (s)", "CPU time of the tree (s)")
    ):
        _style(ax, what, "nodes (1 source + N sinks)", "log")
    fig.suptitle(title)
    return fig


def memory(r: dict[str, Any], title: str) -> Figure:
    fig, axes = plt.subplots(1, 2, figsize=(14, 5))
    labels: list[str] = []
    bars: dict[str, list[float]] = {}
    names = list(r["targets"])
    for name, tr in r["targets"].items():
        for role, d in [
            ("idle node", _idle_node(tr)),
            ("coordinator", tr.get("services", {}).get("coordinator")),
            ("daemon", tr.get("services", {}).get("daemon")),
        ]:
            if role not in labels:
                labels.append(role)
            bars.setdefault(name, []).append(d["rss_MB"] if d else math.nan)
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        vals = bars.get(name, [])
        axes[0].bar([x + i * width for x in range(len(vals))], vals, width, label=name)
    axes[0].set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(labels))], labels)
    axes[0].set_ylabel("RSS MB")
    axes[0].set_title("one process, idle")
    for i, name in enumerate(names):
        flows = r["targets"][name].get("dataflows", {})
        xs = sorted(flows, key=int)
        axes[1].bar(
            [j + i * width for j in range(len(xs))],
            [flows[x]["total"]["pss_MB"] or flows[x]["total"]["rss_MB"] for x in xs],
            width,
            label=name,
        )
        axes[1].set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(xs))], [f"{x} nodes" for x in xs])
    axes[1].set_ylabel("PSS MB, whole tree")
    axes[1].set_title("idle dataflow, total (PSS: shared pages counted once)")
    for ax in axes:
        ax.legend()
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(title)
    return fig


def _idle_node(tr: dict[str, Any]) -> dict[str, Any] | None:
    flows = tr.get("dataflows", {})
    if not flows:
        return None
    sink: dict[str, Any] | None = flows[min(flows, key=int)].get("sink")
    return sink


def chain10(v: dict[str, Any], title: str) -> Figure:
    fig, axes = plt.subplots(1, 2, figsize=(14, 5))
    for name, t in v["targets"].items():
        m = t.get("median")
        if not m:
            continue
        ks = sorted(m["latency"], key=int)
        axes[0].plot([human(int(k)) for k in ks], [m["latency"][k]["p50_us"] for k in ks], "o-", label=name)
        ks = sorted(m["throughput"], key=int)
        axes[1].plot([human(int(k)) for k in ks], [m["throughput"][k]["msgs_per_s"] for k in ks], "o-", label=name)
    for ax, what in zip(axes, ("10-node chain: end-to-end p50 (µs)", "10-node chain: burst msgs/s")):
        ax.set_yscale("log")
        _style(ax, what, "payload")
    fig.suptitle(title)
    return fig


def soak(r: dict[str, Any], title: str) -> Figure:
    targets = {n: t["result"] for n, t in r["targets"].items() if "result" in t}
    fig, axes = plt.subplots(len(targets), 3, figsize=(16, 4.2 * max(1, len(targets))), squeeze=False)
    for i, (name, res) in enumerate(targets.items()):
        for proc, s in sorted(res["series"].items()):
            for ax, key in zip(axes[i], ("rss_MB", "fds", "threads")):
                ax.plot(s["t_s"], s[key], label=proc)
        for ax, key in zip(axes[i], ("RSS MB", "open fds", "threads")):
            ax.set_title(f"{name}: {key}")
            ax.set_xlabel("s")
            ax.grid(True, alpha=0.3)
        axes[i][0].legend(fontsize="small")
    fig.suptitle(title)
    return fig


def draw(result: Path, out_dir: Path) -> list[Path]:
    """Every plot of ``result`` into ``out_dir``; the files written."""
    doc = json.loads(Path(result).read_text())
    when = doc.get("started", "")
    load = doc.get("machine", {}).get("loadavg_at_start", [math.nan])[0]
    note = f"{when}, load {load:.1f} on {doc.get('machine', {}).get('cpu_count')} CPUs ({Path(result).name})"
    out_dir.mkdir(parents=True, exist_ok=True)
    figs: list[tuple[str, Figure]] = []
    sc = doc.get("scale", {})
    for name, fn in (("fanout", fanout), ("startup", startup), ("memory", memory), ("soak", soak)):
        if name in sc:
            figs.append((name, fn(sc[name], f"{name}: {note}")))
    if "chain10" in doc.get("variants", {}):
        figs.append(("chain10", chain10(doc["variants"]["chain10"], f"chain10: {note}")))
    written = []
    for name, fig in figs:
        fig.tight_layout()
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("result", type=Path, help="a benchmarks/results/*.json written by run.py")
    ap.add_argument("--out", type=Path, default=HERE / "plots")
    args = ap.parse_args()
    for path in draw(args.result, args.out):
        print(path)  # noqa: T201 -- a command-line script's output


if __name__ == "__main__":
    main()
