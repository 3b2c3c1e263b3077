"""``dora-zmq top``: a live view of every node (CPU, memory, messages/s per input and output,
queue depth, drops, losses, restarts), refreshed every second; ``q`` or Ctrl-C quits.

The coordinator holds what the daemons and nodes report (a process sample per node and its
cumulative counters, each about once a second); this view asks it for a snapshot per refresh
and turns successive counters into rates. A rate is measured between the node's own reports
(their age comes with each snapshot), not between refreshes, so two clocks ticking at the same
period do not alias into 0 and 2x readings.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import click
from rich import box
from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .. import _control as ctl
from . import cli
from ._client import ask, connect_checked, coordinator_address
from ._console import out
from ._duration import DURATION
from ._options import COORDINATOR_OPTION

__all__ = ["TopModel", "format_bytes"]

_STALE_S = 3.0  # counters this old (the node reports only while they change): its rates are 0


@dataclass(slots=True)
class _Rates:
    """One node's last counters and the rates measured between its last two reports."""

    at: float = 0.0  # coordinator time of the counters (snapshot time - their age)
    counts: dict[str, int] = field(default_factory=dict)  # "in:x" / "out:y" -> cumulative
    rates: dict[str, float] = field(default_factory=dict)


class TopModel:
    """Successive ``NodeStatsList`` snapshots -> the table ``top`` shows."""

    def __init__(self) -> None:
        self._rates: dict[tuple[str, str], _Rates] = {}
        self.snapshot: ctl.NodeStatsList | None = None

    def update(self, snapshot: ctl.NodeStatsList) -> None:
        """Take a new snapshot; rates change when a node's counters did."""
        self.snapshot = snapshot
        seen = set()
        for n in snapshot.nodes:
            key = (n.dataflow_id, n.node)
            seen.add(key)
            counts = {f"in:{k}": v for k, v in n.received.items()} | {f"out:{k}": v for k, v in n.sent.items()}
            state = self._rates.setdefault(key, _Rates())
            if n.stats_age_s < 0:
                continue
            at = snapshot.time - n.stats_age_s
            if state.counts and at - state.at > 0.05:
                dt = at - state.at
                state.rates = {k: max(0.0, (v - state.counts.get(k, 0)) / dt) for k, v in counts.items()}
            if not state.counts or at - state.at > 0.05:
                state.at, state.counts = at, counts
            if n.stats_age_s > _STALE_S:
                state.rates = {k: 0.0 for k in counts}
        for key in [k for k in self._rates if k not in seen]:
            del self._rates[key]

    def rate(self, dataflow_id: str, node: str, port: str) -> float | None:
        """Messages/s on ``in:<input>`` or ``out:<output>``; None before two reports."""
        state = self._rates.get((dataflow_id, node))
        return None if state is None else state.rates.get(port)

    def table(self) -> Table:
        """One row per input and output of each node; node columns on its first row."""
        nodes = self.snapshot.nodes if self.snapshot else []
        several = len({n.dataflow_id for n in nodes}) > 1
        # No vertical rules: the ten columns fit 80 characters without cutting a header.
        table = Table(
            expand=False, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1), collapse_padding=True
        )
        if several:
            table.add_column("dataflow", no_wrap=True)
        for name in ("node", "machine"):  # names give way (fold) before numbers or headers do
            table.add_column(name, overflow="fold")
        for name in ("CPU%", "RSS", "restarts"):
            table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
        table.add_column("port", overflow="fold")
        for name in ("msg/s", "queue", "dropped", "lost"):
            table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
        for n in sorted(nodes, key=lambda n: (n.dataflow, n.node)):
            running = n.status == "running" and n.pid > 0
            head = [
                escape(n.node) if running else f"[dim]{escape(n.node)} ({escape(n.status)})[/dim]",
                escape(n.machine or "-"),  # "-": the default machine (keeps 80 columns)
                f"{n.cpu_percent:.1f}" if running else "-",
                format_bytes(n.rss_bytes) if running else "-",
                str(n.restarts),
            ]
            ports = self._ports(n)
            for i, port in enumerate(ports or [("", "", "", "", "")]):
                lead = ([escape(n.dataflow)] if i == 0 else [""]) if several else []
                table.add_row(*lead, *(head if i == 0 else [""] * len(head)), *port)
        return table

    def _ports(self, n: ctl.NodeStatsRecord) -> list[tuple[str, str, str, str, str]]:
        rows = []
        for name in sorted(set(n.received) | set(n.queued) | set(n.drops)):
            rows.append(
                (
                    f"← {escape(name)}",
                    _rate(self.rate(n.dataflow_id, n.node, f"in:{name}")),
                    str(n.queued.get(name, 0)),
                    _count(n.drops.get(name, 0), "yellow"),
                    _count(n.lost.get(name, 0), "red"),
                )
            )
        for name in sorted(n.sent):
            rows.append((f"→ {escape(name)}", _rate(self.rate(n.dataflow_id, n.node, f"out:{name}")), "", "", ""))
        return rows


def _rate(value: float | None) -> str:
    if value is None:
        return "…"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _count(value: int, colour: str) -> str:
    return f"[{colour}]{value}[/{colour}]" if value else "0"


def format_bytes(n: int) -> str:
    """``812 KiB``, ``85.3 MiB``, ``1.2 GiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit in ("B", "KiB") else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - unreachable


@cli.command()
@click.argument("dataflow", required=False, default="")
@click.option("--interval", "interval_s", type=DURATION, default=1.0, show_default=True, help="Refresh period.")
@click.option("--once", is_flag=True, help="Print one view (rates over one interval) and exit: for scripts and logs.")
@COORDINATOR_OPTION
def top(dataflow: str, interval_s: float, once: bool, coordinator: str | None) -> None:
    """A live view of every node of the running dataflows (or of DATAFLOW); q quits."""
    address = coordinator_address(coordinator)
    interval_s = max(0.2, interval_s)
    model = TopModel()
    client = connect_checked(address, 3.0)
    try:
        model.update(ask(client, address, ctl.GetNodeStats(dataflow), 3.0))
        if once:
            time.sleep(interval_s)  # rates need a second snapshot one interval later
            model.update(ask(client, address, ctl.GetNodeStats(dataflow), 3.0))
            out.print(_view(model, address, once=True))
            return
        with (
            _keys() as pressed,
            Live(_view(model, address), console=out, screen=out.is_terminal, auto_refresh=False) as live,
        ):
            while True:
                if pressed(interval_s) in ("q", "Q"):
                    return
                model.update(ask(client, address, ctl.GetNodeStats(dataflow), 3.0))
                live.update(_view(model, address), refresh=True)
    except KeyboardInterrupt:
        return
    finally:
        client.close()


def _view(model: TopModel, address: str, once: bool = False) -> Group:
    snapshot = model.snapshot
    nodes = snapshot.nodes if snapshot else []
    flows = sorted({n.dataflow for n in nodes})
    stamp = time.strftime("%H:%M:%S", time.localtime(snapshot.time)) if snapshot else ""
    what = (
        f"dataflow {escape(flows[0])}"
        if len(flows) == 1
        else f"{len(flows)} dataflows"
        if flows
        else "no dataflow running"
    )
    head = Text.from_markup(
        f"[bold]dora-zmq top[/bold]  {escape(address)}  {stamp}  {what},"
        f" {len(nodes)} node{'s' if len(nodes) != 1 else ''}" + ("" if once else "  [dim]q quits[/dim]")
    )
    return Group(head, model.table())


@contextlib.contextmanager
def _keys() -> Iterator[Callable[[float], str]]:
    """``pressed(timeout)``: a key typed within ``timeout`` s (or ""); the terminal is in
    cbreak mode meanwhile (keys come one by one, unechoed; Ctrl-C still interrupts)."""
    fd = sys.stdin.fileno() if sys.stdin is not None and sys.stdin.isatty() else -1
    if fd < 0:  # not a terminal: no keys, only the refresh period (and Ctrl-C)

        def wait(timeout: float) -> str:
            time.sleep(timeout)
            return ""

        yield wait
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:

        def pressed(timeout: float) -> str:
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([fd], [], [], left)
                if ready:
                    key = os.read(fd, 32).decode(errors="replace")
                    if key:
                        return key[-1]
            return ""

        yield pressed
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
