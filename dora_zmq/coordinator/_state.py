"""What the coordinator knows: connected daemons and the state of each dataflow."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from .. import _control as ctl
from ..descriptor import Dataflow, NodeKind

__all__ = ["DaemonRecord", "DataflowRun", "NodeState", "Status"]

LOG_LINES_KEPT = 2000


class Status:
    """Dataflow status strings (as shown by ``dora-zmq list``)."""

    PENDING = "pending"  # waiting for the daemons of every machine it names
    RUNNING = "running"
    STOPPING = "stopping"
    FINISHED = "finished"
    FAILED = "failed"


class NodeState:
    """Node state strings."""

    SPAWNING = "spawning"
    READY = "running"
    WAITING = "waiting"  # a dynamic node not connected (yet, or any more)
    EXITED = "exited"
    FAILED = "failed"
    RESTARTING = "restarting"  # exited; its restart_policy starts it again


@dataclass(slots=True)
class DaemonRecord:
    """A connected daemon."""

    identity: bytes
    machine_id: str
    hostname: str
    pid: int
    node_addresses: list[str] = field(default_factory=list)
    last_seen: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class DataflowRun:
    """One dataflow from start to finish."""

    id: str
    name: str
    descriptor: Dataflow
    yaml: str
    working_dir: str
    local: bool
    placement: dict[str, bytes] = field(default_factory=dict)  # node -> daemon identity
    nodes: dict[str, str] = field(default_factory=dict)  # node -> NodeState
    endpoints: dict[str, ctl.NodeEndpoint] = field(default_factory=dict)
    failures: list[ctl.FailureRecord] = field(default_factory=list)
    drops: dict[str, int] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)  # node -> restarts so far
    logs: dict[str, deque[tuple[str, str]]] = field(default_factory=dict)
    status: str = Status.PENDING
    peers_sent: bool = False
    stopped: bool = False
    started_at: float = field(default_factory=time.time)
    pending_deadline: float = 0.0
    pending_error: str = ""
    ended_at: float | None = None
    start_warned: bool = False  # told the user which nodes hold the start barrier

    @property
    def daemons(self) -> set[bytes]:
        """Identities of the daemons running this dataflow's nodes."""
        return set(self.placement.values())

    @property
    def finished(self) -> bool:
        """True once the dataflow ended (successfully or not)."""
        return self.status in (Status.FINISHED, Status.FAILED)

    def static_nodes(self) -> list[str]:
        """Nodes the daemons spawn (everything but ``path: dynamic``)."""
        return [n.id for n in self.descriptor.nodes if n.kind is not NodeKind.DYNAMIC]

    def all_started(self) -> bool:
        """Every spawned node has bound its publisher or already exited."""
        return all(self.nodes[n] != NodeState.SPAWNING for n in self.static_nodes())

    def all_ended(self) -> bool:
        """Every spawned node exited (dynamic nodes do not hold a dataflow open)."""
        return all(self.nodes[n] in (NodeState.EXITED, NodeState.FAILED) for n in self.static_nodes())

    def exited(self) -> list[str]:
        """Nodes that have ended."""
        return [n for n, s in self.nodes.items() if s in (NodeState.EXITED, NodeState.FAILED)]

    def add_log(self, node: str, stream: str, line: str) -> None:
        """Keep the recent lines of each node for ``dora-zmq logs``."""
        self.logs.setdefault(node, deque(maxlen=LOG_LINES_KEPT)).append((stream, line))

    def info(self) -> ctl.DataflowInfo:
        """The row for ``dora-zmq list``."""
        return ctl.DataflowInfo(self.id, self.name, self.status, dict(self.nodes), list(self.failures), dict(self.drops), self.started_at, dict(self.lost), dict(self.restarts))

    def result(self) -> ctl.DataflowResult:
        """The final report sent to attached clients."""
        return ctl.DataflowResult(self.id, self.name, not self.failures and not self.pending_error, list(self.failures), self.stopped, dict(self.drops), dict(self.lost))
