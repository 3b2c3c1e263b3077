"""Options shared by several commands, defined once."""

from __future__ import annotations

import click

from ..coordinator import DEFAULT_ADDRESS

__all__ = ["COORDINATOR_OPTION"]

COORDINATOR_OPTION = click.option(
    "--coordinator", "coordinator", default=None, metavar="ADDR",
    help=f"Coordinator control address (default: $DORA_ZMQ_COORDINATOR or {DEFAULT_ADDRESS}).",
)
