"""Terminal output for the CLI: log lines, results and errors (the only place that prints)."""

from __future__ import annotations

import logging
import sys
import zlib

from rich.console import Console
from rich.markup import escape

from .. import _control as ctl
from .._errors import NodeFailure

__all__ = ["err", "out", "print_counters", "print_failure_result", "print_log_line", "setup_logging"]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

_COLOURS = ["cyan", "green", "magenta", "yellow", "blue", "bright_cyan", "bright_green", "bright_magenta"]


def setup_logging(verbose: int) -> None:
    """WARNING by default, INFO with -v, DEBUG with -vv; to stderr."""
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def print_log_line(msg: ctl.LogLine) -> None:
    """``[node] line`` with a stable colour per node; stderr lines dimmed red, ours bold."""
    colour = _COLOURS[zlib.crc32(msg.node.encode()) % len(_COLOURS)]
    prefix = f"[{colour}]{escape(msg.node)}[/{colour}]"
    line = escape(msg.line)
    if msg.stream == "stderr":
        line = f"[red]{line}[/red]"
    elif msg.stream == "dora":
        line = f"[bold red]{line}[/bold red]"
    out.print(f"{prefix} {line}")


def print_failure_result(result: ctl.DataflowResult) -> None:
    """The failure report: each failed node, its exit status and its stderr tail."""
    err.print(
        f"[bold red]dataflow '{escape(result.name)}' failed[/bold red]"
        + (f": {escape(result.error)}" if result.error else "")
    )
    for f in result.failures:
        failure = NodeFailure(f.node, f.exit_code, f.signal, f.stderr_tail, f.reason, f.machine)
        err.print("  " + escape(failure.describe()))


def print_counters(result: ctl.DataflowResult) -> None:
    """Messages dropped by ``queue_size``, lost in transit and never delivered (sent while the
    dataflow was being stopped, or still in flight then), per input, if any."""
    for label, counts in (
        ("dropped (queue_size full)", result.drops),
        ("lost in transit", result.lost),
        ("not delivered (receiver stopped)", result.undelivered),
    ):
        if counts:
            items = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
            err.print(f"[yellow]messages {label}: {escape(items)}[/yellow]")
