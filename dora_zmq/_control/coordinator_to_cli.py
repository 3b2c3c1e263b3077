"""Replies and streamed events the coordinator sends to the CLI."""

from __future__ import annotations

from ._codec import control_message
from .records import DaemonInfo, DataflowInfo, FailureRecord, NodeStatsRecord

__all__ = [
    "BundleWanted",
    "CoordinatorStatus",
    "DataflowList",
    "DataflowResult",
    "DataflowStarted",
    "Failed",
    "LogLine",
    "NodeDaemon",
    "NodeStatsList",
    "Ok",
    "Pong",
]


@control_message
class Ok:
    """The request was done."""

    message: str = ""


@control_message
class Failed:
    """The request was refused; ``message`` says why and what to do."""

    message: str


@control_message
class DataflowStarted:
    """A dataflow was accepted and its nodes are being spawned."""

    dataflow_id: str
    name: str
    machine_wait_s: float = 0.0  # how long the coordinator waits for the daemons it needs


@control_message
class DataflowList:
    """Answer to ``ListDataflows``."""

    dataflows: list[DataflowInfo]


@control_message
class LogLine:
    """One line a node wrote (``stream`` is ``stdout`` / ``stderr`` / ``dora`` for our own).

    ``time``: Unix time the coordinator received it (0 from older coordinators).
    """

    dataflow_id: str
    node: str
    line: str
    stream: str = "stdout"
    time: float = 0.0


@control_message
class DataflowResult:
    """A dataflow ended: ``ok`` unless a node failed."""

    dataflow_id: str
    name: str
    ok: bool
    failures: list[FailureRecord]
    stopped: bool = False
    drops: dict[str, int] | None = None
    lost: dict[str, int] | None = None
    error: str = ""  # why the dataflow as a whole failed (e.g. it could not be placed)
    #: per input, sent but never delivered (a STOP mid-stream; coordinator._accounting)
    undelivered: dict[str, int] | None = None


@control_message
class NodeDaemon:
    """Where a dynamic node registers: its dataflow and the daemon's node addresses."""

    dataflow_id: str
    machine: str
    addresses: list[str]


@control_message
class Pong:
    """Answer to ``Ping``."""

    version: str
    daemons: list[str]


@control_message
class BundleWanted:
    """Answer to ``OfferBundle`` and to each uploaded ``BundleChunk``: send from ``offset``.

    ``offset`` equal to the bundle's size means the coordinator holds the whole bundle,
    verified (at once for a bundle it had already: nothing is sent twice).
    """

    digest: str
    offset: int


@control_message
class CoordinatorStatus:
    """Answer to ``GetStatus``: the coordinator, each connected daemon, each dataflow."""

    address: str
    version: str
    uptime_s: float
    daemons: list[DaemonInfo]
    dataflows: list[DataflowInfo]


@control_message
class NodeStatsList:
    """Answer to ``GetNodeStats``: one record per node, ``time`` the coordinator's Unix time."""

    time: float
    nodes: list[NodeStatsRecord]
