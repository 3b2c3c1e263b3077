"""What a daemon tells its nodes (``Peers``, ``UpstreamExited`` are shared with the coordinator)."""

from __future__ import annotations

from typing import Any

from ._codec import control_message
from .contract import StopReason

__all__ = ["NodeSetup", "RegisterRefused", "StopNode"]


@control_message
class NodeSetup:
    """Reply to ``RegisterNode``: the node's dataflow and where to bind its publisher."""

    dataflow_id: str
    node: str
    yaml: str
    working_dir: str
    machine: str
    ipc_dir: str
    tcp_bind: str = ""
    tcp_advertise: str = ""
    stopping: bool = False
    #: This node's reader token: sent with its start markers and shared-memory releases, so a
    #: publisher takes them as this node's only from a holder of the token.
    reader_token: str = ""
    #: The reader tokens of the nodes that subscribe to this node's outputs, by node id.
    reader_tokens: dict[str, str] | None = None
    restart_count: int = 0  # how many times the daemon restarted this node (restart_policy)
    #: The parsed dataflow (``descriptor._plain``): the node builds its records from it instead
    #: of parsing ``yaml`` (None from an older daemon, or if it cannot be read: it parses then).
    dataflow: dict[str, Any] | None = None


@control_message
class RegisterRefused:
    """The daemon does not know this node (wrong id or dataflow)."""

    error: str


@control_message
class StopNode:
    """Deliver a STOP event: ``reason`` is ``MANUAL`` or the dataflow's reason."""

    reason: str = StopReason.MANUAL
