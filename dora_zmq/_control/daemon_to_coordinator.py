"""Reports daemons send to the coordinator."""

from __future__ import annotations

from ._codec import control_message
from .records import NodeEndpoint

__all__ = ["DaemonExiting", "DaemonHeartbeat", "NodeExited", "NodeRestarting", "NodeLogs", "NodeReady", "NodeStats", "RegisterDaemon", "RequestStop"]


@control_message
class RegisterDaemon:
    """Hello from a daemon; ``machine_id`` is what ``deploy.machine`` names."""

    machine_id: str
    version: str
    protocol: int
    hostname: str
    pid: int
    node_addresses: list[str] | None = None  # where nodes (incl. dynamic ones) register


@control_message
class DaemonHeartbeat:
    """Sent every second; a daemon silent for several intervals is considered lost."""

    machine_id: str


@control_message
class NodeReady:
    """A node registered and bound its publisher."""

    dataflow_id: str
    node: str
    endpoint: NodeEndpoint


@control_message
class NodeExited:
    """A node process ended."""

    dataflow_id: str
    node: str
    exit_code: int | None
    signal: int | None
    failed: bool
    reason: str = ""
    stderr_tail: str = ""
    machine: str = ""


@control_message
class NodeRestarting:
    """A node process ended and its ``restart_policy`` starts it again after ``delay_s``.

    Not an exit: the node's subscribers keep their inputs open (they get NODE_RESTARTED).
    """

    dataflow_id: str
    node: str
    restart_count: int  # this restart's number, from 1
    exit_code: int | None
    signal: int | None
    failed: bool
    reason: str = ""
    delay_s: float = 0.0
    limit: int = 0  # max_restarts (0: unlimited)


@control_message
class NodeLogs:
    """Lines a node wrote, batched."""

    dataflow_id: str
    node: str
    lines: list[str]
    stream: str = "stdout"


@control_message
class NodeStats:
    """Counters a node reported per input: dropped by ``queue_size``, lost in transit."""

    dataflow_id: str
    node: str
    drops: dict[str, int]
    lost: dict[str, int] | None = None


@control_message
class RequestStop:
    """A node (e.g. an operator returning STOP_ALL) asks to stop its whole dataflow."""

    dataflow_id: str
    node: str
    reason: str = ""


@control_message
class DaemonExiting:
    """The daemon stopped its nodes and is exiting (after ``ShutdownDaemon`` or a signal)."""

    machine_id: str
