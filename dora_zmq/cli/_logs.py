"""``dora-zmq logs``: the lines the coordinator kept for a dataflow's nodes, then (``--follow``)
new ones until it ends; selected by node, time (``--since``) and pattern (``--grep``).

Patterns are matched here, in the CLI: a user's regular expression never runs in the
coordinator, where a catastrophic one would stall the loop every daemon depends on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import click

from .. import _control as ctl
from .._errors import ControlError
from . import cli
from ._client import StopSignals, coordinator_address, open_stream
from ._console import out, print_log_line
from ._duration import parse_since
from ._options import COORDINATOR_OPTION
from ._records import dump, log_line_json, output_format

__all__ = ["LogSelection"]


@dataclass(slots=True)
class LogSelection:
    """Prints the lines that match: the kept ones (the last ``tail`` matches) once they all
    came, live ones as they come. Owned by the ``logs`` command's thread."""

    fmt: str
    regex: re.Pattern[str] | None
    tail: int
    kept: list[ctl.LogLine] | None = field(default_factory=list)  # None once printed

    def add(self, line: ctl.LogLine) -> None:
        """A line from the coordinator (kept or live)."""
        if self.kept is not None:
            self.kept.append(line)
        elif self.matches(line):
            self._print(line)

    def end_of_kept(self) -> None:
        """Every kept line came (live ones follow): print the selection."""
        if self.kept is None:
            return
        matching = [line for line in self.kept if self.matches(line)]
        self.kept = None
        for line in matching[-self.tail :] if self.tail else matching:
            self._print(line)

    def matches(self, line: ctl.LogLine) -> bool:
        """True if ``line`` passes ``--grep``."""
        return self.regex is None or self.regex.search(line.line) is not None

    def _print(self, line: ctl.LogLine) -> None:
        if self.fmt == "json":
            out.print(dump(log_line_json(line)), markup=False)
        else:
            print_log_line(line)


@cli.command()
@click.argument("dataflow")
@click.argument("node", required=False)
@click.option("--all-nodes", "-a", is_flag=True, help="Every node's lines, interleaved as they came.")
@click.option("--follow", "-f", "follow_", is_flag=True, help="Keep streaming until the dataflow ends.")
@click.option("--tail", type=click.IntRange(min=0), default=0, help="Only the last N lines (after --since and --grep).")
@click.option(
    "--since",
    default=None,
    metavar="WHEN",
    help="Lines from the last 30s/5m/1h, or since a time (2026-12-06T03:00:00, 03:00).",
)
@click.option(
    "--grep", "pattern", default=None, metavar="REGEX", help="Only lines matching this (Python) regular expression."
)
@COORDINATOR_OPTION
@output_format
def logs(
    dataflow: str,
    node: str | None,
    all_nodes: bool,
    follow_: bool,
    tail: int,
    since: str | None,
    pattern: str | None,
    coordinator: str | None,
    fmt: str,
) -> None:
    """Print a node's output, or every node's (kept by the coordinator: the last 2000 lines
    per node; the files are in <yaml dir>/out/<id>/)."""
    if (node is None) == (not all_nodes):
        raise click.UsageError("name a NODE, or pass --all-nodes (not both)")
    try:
        regex = re.compile(pattern) if pattern else None
    except re.error as exc:
        raise click.BadParameter(f"{pattern!r}: {exc}", param_hint="--grep") from None
    try:
        since_t = parse_since(since) if since is not None else 0.0
    except click.BadParameter as exc:
        exc.param_hint = "--since"
        raise
    # With --grep, --tail counts matching lines: ask for every kept line and pick here.
    msg = ctl.FetchLogs(dataflow, node or "", follow_, 0 if regex else tail, all_nodes, since_t)
    selection = LogSelection(fmt, regex, tail if regex else 0)
    client = open_stream(coordinator_address(coordinator), msg)
    try:
        with StopSignals() as signals:
            while not signals.event.is_set():
                got = client.recv(200)
                if got is None:
                    continue
                match got[1]:
                    case ctl.Failed(message=message):
                        raise ControlError(message)
                    case ctl.LogLine() as line:
                        selection.add(line)
                    case ctl.Ok():  # the kept lines are all here; live ones follow
                        selection.end_of_kept()
                    case ctl.DataflowResult():
                        selection.end_of_kept()
                        return
    finally:
        client.close()
