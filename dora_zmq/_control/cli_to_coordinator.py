"""Requests the CLI sends to the coordinator."""

from __future__ import annotations

from ._codec import control_message
from .records import BundleRef, ShipMode

__all__ = [
    "Attach",
    "BundleChunk",
    "Destroy",
    "FetchLogs",
    "GetNodeStats",
    "GetStatus",
    "ListDataflows",
    "OfferBundle",
    "Ping",
    "ResolveNode",
    "StartDataflow",
    "StopDataflow",
    "WaitForSpawn",
]


@control_message
class StartDataflow:
    """Start a dataflow from YAML text. ``local`` runs every node on the default daemon.

    ``ship`` is a :class:`ShipMode`; unless it is ``never``, ``bundle`` names the folder's
    bundle, uploaded before (``OfferBundle``), and ``folder_id`` is ``"<st_dev>:<st_ino>"`` of
    ``working_dir`` on the CLI's machine (how a daemon in ``auto`` mode tells it sees the
    very same folder).
    """

    yaml: str
    path: str
    working_dir: str
    name: str | None = None
    local: bool = False
    ship: str = ShipMode.NEVER
    bundle: BundleRef | None = None
    folder_id: str = ""


@control_message
class OfferBundle:
    """The CLI has this bundle to upload; answered by ``BundleWanted`` (where to start)."""

    bundle: BundleRef


@control_message
class BundleChunk:
    """Bytes of a bundle from ``offset``, base64 (``dora_zmq._bundle.encode_chunk``).

    CLI -> coordinator during an upload (answered by ``BundleWanted``), and coordinator ->
    daemon in answer to ``FetchBundle``.
    """

    digest: str
    offset: int
    data: str


@control_message
class StopDataflow:
    """Send STOP to every node of a dataflow (by id or name); kill after ``grace_s``."""

    dataflow: str
    grace_s: float | None = None


@control_message
class ListDataflows:
    """Ask for the running and recently finished dataflows."""


@control_message
class Attach:
    """Stream a dataflow's events (and its log lines if ``logs``) until it finishes."""

    dataflow: str
    logs: bool = True


@control_message
class WaitForSpawn:
    """Answered (``Ok``) once the dataflow's nodes are placed on daemons and being spawned, or
    (``Failed``, with the reason) once it cannot be: e.g. no daemon for a machine it names."""

    dataflow: str


@control_message
class FetchLogs:
    """The recent log lines of one node; with ``follow``, keep streaming until it ends.

    ``all_nodes`` takes every node's lines (``node`` is ignored), interleaved in arrival
    order; ``since`` (Unix time, 0 = all) selects lines before ``tail`` counts them. With
    ``follow``, an ``Ok`` marks the end of the kept lines: live ones come after it.
    (Patterns are matched by the CLI: a user's regular expression never runs in the
    coordinator, whose loop a catastrophic one could stall for every daemon.)
    """

    dataflow: str
    node: str
    follow: bool = False
    tail: int = 0
    all_nodes: bool = False
    since: float = 0.0


@control_message
class Destroy:
    """Stop every dataflow, every daemon, and the coordinator itself."""


@control_message
class ResolveNode:
    """A dynamic node started by hand asks which daemon serves it (answered by ``NodeDaemon``)."""

    node: str
    dataflow: str = ""


@control_message
class Ping:
    """Is the coordinator there? Answered with ``Pong``."""


@control_message
class GetStatus:
    """The coordinator, its daemons and its dataflows (``dora-zmq status``): ``Status``."""


@control_message
class GetNodeStats:
    """Per-node resources and message counters (``dora-zmq top``): answered by ``NodeStatsList``.

    ``dataflow``: a name or id, or "" for every running dataflow.
    """

    dataflow: str = ""
