"""Commands the coordinator sends to daemons (also relayed by daemons to nodes where noted)."""

from __future__ import annotations

from ._codec import control_message
from .contract import StopReason
from .records import BundleRef, NodeEndpoint, ShipMode

__all__ = [
    "BundleUnavailable",
    "DaemonAccepted",
    "ExitReported",
    "Peers",
    "Probe",
    "ShutdownDaemon",
    "SpawnNodes",
    "StopNodes",
    "UpstreamExited",
    "UpstreamRestarted",
]


@control_message
class DaemonAccepted:
    """Reply to ``RegisterDaemon``; ``error`` set when refused (e.g. a version mismatch).

    ``register_again`` asks a daemon the coordinator does not know (it restarted) to register.
    """

    error: str = ""
    register_again: bool = False


@control_message
class SpawnNodes:
    """Start these nodes of a dataflow on the receiving daemon.

    ``ship``, ``bundle``, ``folder_id`` and ``path`` (the YAML file) as in ``StartDataflow``:
    with a bundle the daemon may fetch it (``FetchBundle``) and run the nodes from its copy.
    """

    dataflow_id: str
    name: str
    yaml: str
    working_dir: str
    nodes: list[str]
    multi_machine: bool = False
    trace_context: str = ""
    ship: str = ShipMode.NEVER
    bundle: BundleRef | None = None
    folder_id: str = ""
    path: str = ""
    #: The dataflow's secret for data-plane reader tokens (see ``NodeSetup.reader_token``);
    #: every daemon of the dataflow gets the same one, no node ever does.
    reader_secret: str = ""


@control_message
class BundleUnavailable:
    """Answer to ``FetchBundle`` when the coordinator cannot serve it (``error`` says why)."""

    digest: str
    error: str


@control_message
class Peers:
    """Every node's publisher endpoint (relayed to nodes); ``exited`` nodes will never publish."""

    dataflow_id: str
    endpoints: dict[str, NodeEndpoint]
    exited: list[str]


@control_message
class ExitReported:
    """The coordinator has the exit of ``node`` (``NodeExited``): the daemon stops resending it."""

    dataflow_id: str
    node: str


@control_message
class UpstreamExited:
    """A node ended (relayed to nodes): failed means crashed or killed, with the error text.

    ``sent``: the messages it sent per output (its last sequence number), from its closing
    report; None when unknown (older nodes, a node killed before it ever reported). With it,
    a subscriber whose end-of-stream marker was lost in transit (a link that dropped, a
    burst past ZeroMQ's queues) still closes the input and counts the missing tail as lost.
    """

    dataflow_id: str
    node: str
    failed: bool
    error: str = ""
    sent: dict[str, int] | None = None


@control_message
class UpstreamRestarted:
    """A node is being restarted (``restart_policy``): its subscribers get NODE_RESTARTED.

    Relayed by daemons to their nodes as is.
    """

    dataflow_id: str
    node: str
    restart_count: int


@control_message
class StopNodes:
    """Send STOP to the dataflow's nodes; SIGTERM after ``grace_s``, then SIGKILL."""

    dataflow_id: str
    grace_s: float
    reason: str = StopReason.MANUAL
    trace_context: str = ""


@control_message
class ShutdownDaemon:
    """Stop every node (STOP, then the kill ladder after ``grace_s``) and exit."""

    grace_s: float = 10.0


@control_message
class Probe:
    """Asks nothing: sending it tells the coordinator whether a connection is still open.

    A send to a closed connection fails at once. Used before giving a daemon's machine id to
    another connection (refused while the first is alive) and to find attached clients that
    left; receivers ignore it.
    """
