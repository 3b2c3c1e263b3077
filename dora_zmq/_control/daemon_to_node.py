"""What a daemon tells its nodes (``Peers``, ``UpstreamExited`` are shared with the coordinator)."""

from __future__ import annotations

from ._codec import control_message

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
    restart_count: int = 0  # how many times the daemon restarted this node (restart_policy)


@control_message
class RegisterRefused:
    """The daemon does not know this node (wrong id or dataflow)."""

    error: str


@control_message
class StopNode:
    """Deliver a STOP event: ``reason`` is ``MANUAL`` or the dataflow's reason."""

    reason: str = "MANUAL"
