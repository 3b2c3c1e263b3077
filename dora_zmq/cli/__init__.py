"""The ``dora-zmq`` command line (click). Only this package prints or picks exit codes."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click
from rich.markup import escape

from .._errors import DataflowFailed, DoraZmqError
from .._version import __version__
from ._console import err, setup_logging

__all__ = ["main", "cli"]


def _verbose_after_command(ctx: click.Context, param: click.Parameter, value: int) -> int:
    """``dora-zmq check FILE -v``: the count adds to what was given before the command."""
    if value:
        before = ctx.parent.params.get("verbose", 0) if ctx.parent is not None else 0
        setup_logging(before + value)
    return value


class _Command(click.Command):
    """Every command also takes ``-v``/``-vv`` after its name (as ``git``, ``docker`` do)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(
            click.Option(
                ["-v", "--verbose"],
                count=True,
                expose_value=False,
                callback=_verbose_after_command,
                help="More logging (-v info, -vv debug).",
            )
        )


# Commands whose module is imported only when the command is asked for (run, listed in
# ``--help``): what ``dora-zmq run`` imports before it starts the nodes is on their critical path.
_LAZY_COMMANDS = {
    "graph": "._graph",
    "list": "._views",
    "logs": "._logs",
    "status": "._views",
    "top": "._top",
}


class _Group(click.Group):
    """Turns our errors into one red line and exit code 1 (2 for usage); bugs keep tracebacks.

    The commands of ``_LAZY_COMMANDS`` register themselves when their module is imported, the
    first time one of them is looked up.
    """

    command_class = _Command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = _LAZY_COMMANDS.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            importlib.import_module(module, __name__)
        return self.commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DataflowFailed:
            sys.exit(1)
        except DoraZmqError as exc:
            err.print(f"[bold red]error:[/bold red] {escape(str(exc))}")
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dora-zmq")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """dora_zmq: run dora dataflows over ZeroMQ and Arrow, locally or across machines."""
    setup_logging(verbose)


def main() -> None:
    """Console-script entry point."""
    cli()


# Last, once ``cli`` exists: the command modules register themselves on it (``@cli.command``), so
# ``from dora_zmq.cli import cli`` is the whole command line (for click's CliRunner, docs tools),
# not an empty group until ``main()`` runs; ``_LAZY_COMMANDS`` load when looked up.
from . import _commands  # noqa: E402, F401
