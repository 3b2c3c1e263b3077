"""Read-only views of a running deployment: ``list`` and ``status`` (tables or JSON)."""

from __future__ import annotations

import sys
import time

import click
from rich.markup import escape
from rich.table import Table

from .. import _control as ctl
from .._errors import ControlError, NodeFailure
from . import cli
from ._client import coordinator_address, request
from ._console import out
from ._duration import DURATION
from ._options import COORDINATOR_OPTION
from ._records import dataflow_json, dump, output_format, status_json

__all__ = ["dataflow_table", "format_age"]


@cli.command(name="list")
@COORDINATOR_OPTION
@output_format
def list_(coordinator: str | None, fmt: str) -> None:
    """List running and recently finished dataflows."""
    flows = request(coordinator_address(coordinator), ctl.ListDataflows()).dataflows
    if fmt == "json":
        out.print(dump({"dataflows": [dataflow_json(d) for d in flows]}), markup=False)
        return
    if not flows:
        out.print("no dataflows (start one with `dora-zmq start FILE`)")
        return
    out.print(dataflow_table(flows))
    _print_failure_reasons(flows)
    _print_undelivered(flows)


@cli.command()
@click.option(
    "--machine",
    "machine",
    default=None,
    metavar="ID",
    help="Exit 1 unless this machine's daemon is connected ('' = the default machine).",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=DURATION,
    default=3.0,
    show_default=True,
    help="How long to wait for the coordinator.",
)
@COORDINATOR_OPTION
@output_format
def status(machine: str | None, timeout_s: float, coordinator: str | None, fmt: str) -> None:
    """The coordinator, each daemon and the dataflows; exit 1 if the coordinator is unreachable.

    A healthcheck: `dora-zmq status` for the coordinator, `dora-zmq status --machine ID` for
    a daemon (exit 0 only while that machine's daemon is connected).
    """
    address = coordinator_address(coordinator)
    try:
        st = request(address, ctl.GetStatus(), timeout_s=timeout_s)
    except ControlError as exc:
        if fmt == "json":
            out.print(dump({"coordinator": None, "error": str(exc)}), markup=False)
            sys.exit(1)
        raise
    found = None if machine is None else next((d for d in st.daemons if d.machine_id == machine), None)
    if fmt == "json":
        out.print(dump(status_json(st)), markup=False)
    elif machine is None:
        _print_status(st)
    elif found is not None:
        out.print(
            f"daemon for {escape(_machine(machine))} connected to {escape(st.address)} "
            f"(heartbeat {found.heartbeat_age_s:.1f} s ago, {found.nodes_running} nodes running)"
        )
    if machine is not None and found is None:
        connected = ", ".join(_machine(d.machine_id) for d in st.daemons) or "none"
        raise ControlError(
            f"no daemon for {_machine(machine)} is connected to the coordinator at {st.address}"
            f" (connected: {connected})"
        )


def dataflow_table(flows: list[ctl.DataflowInfo]) -> Table:
    """Dataflows as rows; fits 80 columns (long cells wrap, headers do not get cut)."""
    table = Table(expand=False)
    table.add_column("name", overflow="fold")
    table.add_column("id", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("age", no_wrap=True, justify="right")
    table.add_column("nodes", overflow="fold")
    table.add_column("failed", overflow="fold")
    restarts = any(d.restarts for d in flows)  # a column only when a node was restarted
    if restarts:
        table.add_column("restarts", overflow="fold")
    table.add_column("dropped", overflow="fold")
    table.add_column("lost", overflow="fold")
    now = time.time()
    for d in flows:
        states: dict[str, int] = {}
        for s in d.nodes.values():
            states[s] = states.get(s, 0) + 1
        row = [
            escape(d.name),
            d.id[:8],
            d.status,
            format_age(now - d.started_at) if d.started_at else "-",
            ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "-",
            escape(", ".join(f.node for f in d.failures)) or "-",
        ]
        if restarts:
            row.append(escape(_counts(d.restarts or {})))
        table.add_row(*row, escape(_counts(d.drops)), escape(_counts(d.lost or {})))
    return table


def _print_failure_reasons(flows: list[ctl.DataflowInfo]) -> None:
    """Why each failed dataflow failed, one line per cause (the table has only node names)."""
    for d in flows:
        if d.status != "failed":
            continue
        if d.error:
            out.print(f"[red]{escape(d.name)}[/red]: {escape(d.error)}")
            continue
        for f in d.failures:
            failure = NodeFailure(f.node, f.exit_code, f.signal, "", f.reason, f.machine)
            out.print(f"[red]{escape(d.name)}[/red]: {escape(failure.describe())}")


def _print_undelivered(flows: list[ctl.DataflowInfo]) -> None:
    """Messages an ended dataflow's stop left undelivered, per input, one line per dataflow
    (a line, not a column: a ninth column would not fit 80 columns)."""
    for d in flows:
        if d.undelivered:
            counts = ", ".join(f"{k}: {v}" for k, v in sorted(d.undelivered.items()))
            out.print(f"[yellow]{escape(d.name)}[/yellow]: messages not delivered (receiver stopped): {escape(counts)}")


def _print_status(st: ctl.CoordinatorStatus) -> None:
    out.print(
        f"[bold]coordinator[/bold] {escape(st.address)}  version {escape(st.version)}  up {format_age(st.uptime_s)}"
    )
    if st.daemons:
        table = Table(title=f"daemons ({len(st.daemons)})", title_justify="left")
        for column in ("machine", "host", "address", "version", "heartbeat", "nodes"):
            table.add_column(column, overflow="fold", justify="right" if column in ("heartbeat", "nodes") else "left")
        for d in st.daemons:
            table.add_row(
                escape(_machine(d.machine_id, short=True)),
                escape(f"{d.hostname} (pid {d.pid})"),
                escape(d.advertise or d.hostname),
                escape(d.version),
                f"{d.heartbeat_age_s:.1f} s ago",
                str(d.nodes_running),
            )
        out.print(table)
    else:
        out.print("no daemons connected (start one with `dora-zmq daemon`, or `dora-zmq up`)")
    if st.dataflows:
        out.print(dataflow_table(st.dataflows))
        _print_failure_reasons(st.dataflows)
    else:
        out.print("no dataflows")


def format_age(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h10m``, ``3d4h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def _machine(machine_id: str, short: bool = False) -> str:
    if short:
        return machine_id or "(default)"
    return f"machine '{machine_id}'" if machine_id else "the default machine"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "-"
