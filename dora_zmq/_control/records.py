"""Records shared by several control directions."""

from __future__ import annotations

import re

from ._codec import control_message

__all__ = [
    "BundleRef",
    "DaemonInfo",
    "DataflowInfo",
    "FailureRecord",
    "NodeEndpoint",
    "NodeStatsRecord",
    "ProcessSample",
    "ShipMode",
    "is_safe_dataflow_id",
]

# What a coordinator makes (a UUID) and more, but never a path: no separator, no leading dot.
_SAFE_DATAFLOW_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def is_safe_dataflow_id(text: str) -> bool:
    """Whether ``text`` may be a dataflow id: daemons use it in file and folder names (its
    logs, its run folder, which they later remove), so one from a forged message must not
    name ``../..`` or an absolute path."""
    return isinstance(text, str) and _SAFE_DATAFLOW_ID.fullmatch(text) is not None and ".." not in text


@control_message
class NodeEndpoint:
    """Where a node's publisher can be reached: ipc for same-machine peers, tcp across hosts."""

    machine: str
    ipc: str
    tcp: str = ""

    def for_peer(self, peer_machine: str) -> str:
        """The address a subscriber on ``peer_machine`` should connect to."""
        if peer_machine == self.machine or not self.tcp:
            return self.ipc
        return self.tcp


@control_message
class FailureRecord:
    """A failed node, as carried on the wire (see ``dora_zmq.NodeFailure``)."""

    node: str
    exit_code: int | None = None
    signal: int | None = None
    stderr_tail: str = ""
    reason: str = ""
    machine: str = ""


@control_message
class DataflowInfo:
    """One row of ``dora-zmq list``."""

    id: str
    name: str
    status: str
    nodes: dict[str, str]
    failures: list[FailureRecord]
    drops: dict[str, int]
    started_at: float = 0.0
    lost: dict[str, int] | None = None
    error: str = ""  # why the dataflow as a whole failed (e.g. no daemon for a machine)
    ended_at: float | None = None
    machines: dict[str, str] | None = None  # node -> machine id it was placed on
    restarts: dict[str, int] | None = None  # node -> times restarted (restart_policy)
    #: per input, sent but never delivered, once it ended (a STOP mid-stream; coordinator._accounting)
    undelivered: dict[str, int] | None = None


@control_message
class DaemonInfo:
    """One connected daemon, as ``dora-zmq status`` shows it."""

    machine_id: str
    hostname: str
    pid: int
    version: str
    advertise: str  # the address other machines reach it by ("" = its host name)
    node_addresses: list[str]
    heartbeat_age_s: float  # since the coordinator last heard from it
    connected_s: float  # since it registered
    nodes_running: int


@control_message
class ProcessSample:
    """A node process as its daemon sees it (``dora-zmq top``)."""

    dataflow_id: str
    node: str
    pid: int
    cpu_percent: float  # since the previous sample; 100 = one core
    rss_bytes: int
    restarts: int = 0


@control_message
class NodeStatsRecord:
    """One node in ``dora-zmq top``: its process and its message counters (cumulative).

    Counters are per input (``received``, ``queued``, ``drops``, ``lost``) or per output
    (``sent``); the CLI turns two snapshots into rates. ``pid`` is 0 when no process sample
    has arrived (a node not started yet, or ended).
    """

    dataflow_id: str
    dataflow: str
    node: str
    machine: str
    status: str
    pid: int
    cpu_percent: float
    rss_bytes: int
    restarts: int
    received: dict[str, int]
    sent: dict[str, int]
    queued: dict[str, int]
    drops: dict[str, int]
    lost: dict[str, int]
    stats_age_s: float  # since the node last reported its counters (-1: never)


class ShipMode:
    """How a dataflow's folder reaches the machines that run its nodes (``start --ship``).

    ``AUTO``: a daemon that sees the very folder the CLI packed (same path, same device and
    inode, same YAML text) runs the nodes in place; any other daemon fetches the bundle.
    ``ALWAYS``: every daemon fetches the bundle and runs the nodes from its copy.
    ``NEVER``: no bundle; the folder must exist at the same path on every machine.
    """

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"
    ALL = (AUTO, ALWAYS, NEVER)


@control_message
class BundleRef:
    """A packed dataflow folder: its sha256 (hex) names it, ``size`` is the archive's bytes."""

    digest: str
    size: int
