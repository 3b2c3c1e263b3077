"""Options shared by several commands, defined once."""

from __future__ import annotations

from typing import Any, Callable

import click

from ..coordinator import DEFAULT_ADDRESS
from ._client import dora_address
from ._duration import DURATION

__all__ = ["COORDINATOR_OPTION", "GRACE_OPTION"]

#: ``--grace-duration`` of every command that stops nodes (run, start, stop, record, replay).
GRACE_OPTION = click.option(
    "--grace-duration",
    "grace",
    type=DURATION,
    default="10s",
    show_default=True,
    help="How long nodes get to exit after STOP before SIGTERM (then SIGKILL 2 s later): 5s, 500ms, 1m or seconds.",
)


def _remember(ctx: click.Context, param: click.Parameter, value: object) -> None:
    if value is not None and param.name:
        ctx.meta[f"dora_zmq.{param.name}"] = value


def _coordinator(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--coordinator``, else dora's ``--coordinator-addr``/``--coordinator-port`` (eager, so
    they were read first), else None (the environment decides)."""
    return value or dora_address(ctx.meta.get("dora_zmq.coordinator_addr"), ctx.meta.get("dora_zmq.coordinator_port"))


def COORDINATOR_OPTION(command: Callable[..., Any]) -> Callable[..., Any]:  # noqa: N802 - used as a constant decorator
    """The coordinator address options: ``--coordinator ADDR``, and dora's spelling in two
    parts (``--coordinator-addr IP --coordinator-port PORT``)."""
    for option in reversed(
        (
            click.option(
                "--coordinator",
                "coordinator",
                default=None,
                metavar="ADDR",
                callback=_coordinator,
                help=f"Coordinator control address (default: $DORA_ZMQ_COORDINATOR or {DEFAULT_ADDRESS}).",
            ),
            click.option(
                "--coordinator-addr",
                "coordinator_addr",
                metavar="IP",
                expose_value=False,
                is_eager=True,
                callback=_remember,
                help="dora's spelling: the coordinator's host ($DORA_COORDINATOR_ADDR).",
            ),
            click.option(
                "--coordinator-port",
                "coordinator_port",
                type=int,
                metavar="PORT",
                expose_value=False,
                is_eager=True,
                callback=_remember,
                help="dora's spelling: its port ($DORA_COORDINATOR_PORT).",
            ),
        )
    ):
        command = option(command)
    return command
