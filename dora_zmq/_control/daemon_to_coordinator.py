"""Reports daemons send to the coordinator."""

from __future__ import annotations

from ._codec import control_message
from .records import NodeEndpoint, ProcessSample

__all__ = [
    "HEARTBEAT_INTERVAL_S",
    "HEARTBEAT_ID_SUFFIX",
    "DaemonExiting",
    "DaemonHeartbeat",
    "FetchBundle",
    "NodeExited",
    "NodeLogs",
    "NodeReady",
    "NodeResources",
    "NodeRestarting",
    "NodeStats",
    "RegisterDaemon",
    "RequestStop",
]


@control_message
class RegisterDaemon:
    """Hello from a daemon; ``machine_id`` is what ``deploy.machine`` names."""

    machine_id: str
    version: str
    protocol: int
    hostname: str
    pid: int
    node_addresses: list[str] | None = None  # where nodes (incl. dynamic ones) register
    advertise: str = ""  # the address other machines reach this one by (--advertise)


#: How often a daemon says it is alive (from a thread that does nothing else).
HEARTBEAT_INTERVAL_S = 0.5
#: A daemon's heartbeat connection has the routing id of its control connection plus this
#: suffix: the coordinator credits that daemon with its beats (same key required).
HEARTBEAT_ID_SUFFIX = b"/heartbeat"


@control_message
class DaemonHeartbeat:
    """Sent every ``HEARTBEAT_INTERVAL_S``, on the control connection and on the heartbeat
    connection; see ``coordinator/_liveness.py`` for when a silent daemon is lost.

    ``exits`` (control connection only): per dataflow, the nodes whose ``UpstreamExited`` this
    daemon has received. The coordinator sends again the ones missing (lost with a connection
    that dropped), so an input's end never depends on one control message surviving. None
    from older daemons and on the heartbeat connection.
    """

    machine_id: str
    exits: dict[str, list[str]] | None = None


@control_message
class NodeReady:
    """A node registered and bound its publisher."""

    dataflow_id: str
    node: str
    endpoint: NodeEndpoint


@control_message
class NodeExited:
    """A node process ended. The coordinator acknowledges it (``ExitReported``); the daemon
    sends it again until then (see ``daemon._exit_reports``)."""

    dataflow_id: str
    node: str
    exit_code: int | None
    signal: int | None
    failed: bool
    reason: str = ""
    stderr_tail: str = ""
    machine: str = ""
    #: messages it sent per output (its last sequence numbers), from its last counters; None
    #: if unknown. Subscribers count what never arrived as lost (see ``UpstreamExited.sent``).
    sent: dict[str, int] | None = None


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
    """Counters a node reports (cumulative), about once a second while they change.

    Per input: ``drops`` (``queue_size`` full), ``lost`` (in transit), ``received`` and
    ``queued`` (waiting in its queue now); per output: ``sent``. The last three are None from
    older nodes.
    """

    dataflow_id: str
    node: str
    drops: dict[str, int]
    lost: dict[str, int] | None = None
    received: dict[str, int] | None = None
    sent: dict[str, int] | None = None
    queued: dict[str, int] | None = None


@control_message
class NodeResources:
    """CPU and memory of this daemon's node processes, sent once a second while it runs any."""

    machine_id: str
    samples: list[ProcessSample]


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


@control_message
class FetchBundle:
    """Send me bundle ``digest`` from ``offset`` (answered by ``BundleChunk`` or ``BundleUnavailable``).

    The daemon asks for one chunk at a time: its requests are the flow control, and a
    transfer resumes from the last byte that arrived.
    """

    digest: str
    offset: int
