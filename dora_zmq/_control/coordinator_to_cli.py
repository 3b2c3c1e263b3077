"""Replies and streamed events the coordinator sends to the CLI."""

from __future__ import annotations

from ._codec import control_message
from .records import DataflowInfo, FailureRecord

__all__ = ["BundleWanted", "DataflowList", "DataflowResult", "DataflowStarted", "Failed", "LogLine", "NodeDaemon", "Ok", "Pong"]


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


@control_message
class DataflowList:
    """Answer to ``ListDataflows``."""

    dataflows: list[DataflowInfo]


@control_message
class LogLine:
    """One line a node wrote (``stream`` is ``stdout`` / ``stderr`` / ``dora`` for our own)."""

    dataflow_id: str
    node: str
    line: str
    stream: str = "stdout"


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
