"""What the coordinator knows: connected daemons and the state of each dataflow."""

from __future__ import annotations

import heapq
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

from .. import _control as ctl
from ..descriptor import Dataflow, NodeKind
from ..security import TRUSTED, Peer

__all__ = ["DaemonRecord", "DataflowRun", "LogEntry", "LogWatcher", "NodeState", "Status"]

LOG_LINES_KEPT = 2000
#: Longer log lines are cut (a node printing megabytes without a newline must not fill memory).
LOG_LINE_MAX = 16 * 1024


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
    UNCONFIRMED = "unconfirmed"  # its exit was not confirmed by the stop's deadline (._deadlines)


@dataclass(slots=True)
class DaemonRecord:
    """A connected daemon."""

    identity: bytes
    machine_id: str
    hostname: str
    pid: int
    node_addresses: list[str] = field(default_factory=list)
    key: Peer = TRUSTED  # the CURVE key it registered with: its reports must come with it
    last_seen: float = field(default_factory=time.monotonic)
    version: str = ""
    advertise: str = ""
    connected_at: float = field(default_factory=time.monotonic)
    probed_at: float = 0.0  # when its connection was last probed for being silent (._liveness)
    suspect: bool = False  # silent past DAEMON_TIMEOUT_S, connection still open
    control_seen: float = field(default_factory=time.monotonic)  # last message on its control connection
    resumed_at: float = 0.0  # when its control connection was heard from again after a silence (._deadlines)

    def heard(self, now: float, on_control: bool, gap_s: float) -> None:
        """A message came from this daemon (``on_control``: on its control connection, which a
        silence of more than ``gap_s`` before marks as resumed)."""
        self.last_seen = now
        if on_control:
            if now - self.control_seen > gap_s:
                self.resumed_at = now
            self.control_seen = now


#: One kept log line: (Unix time received, stream, line).
LogEntry = tuple[float, str, str]


@dataclass(slots=True)
class LogWatcher:
    """A CLI connection streaming a dataflow: its log lines (``node`` None: all nodes, if
    ``logs``), and the result when it ends."""

    peer: bytes
    logs: bool
    node: str | None = None

    def wants(self, node: str) -> bool:
        """True if this watcher should get a line of ``node``."""
        return self.logs and (self.node is None or self.node == node)


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
    undelivered: dict[str, int] = field(default_factory=dict)  # set when it ends (._accounting)
    logs: dict[str, deque[LogEntry]] = field(default_factory=dict)
    stats: dict[str, ctl.NodeStats] = field(default_factory=dict)  # node -> its last counters
    stats_at: dict[str, float] = field(default_factory=dict)  # node -> monotonic time of those
    resources: dict[str, ctl.ProcessSample] = field(default_factory=dict)  # node -> last sample
    restarts: dict[str, int] = field(default_factory=dict)  # node -> restarts so far
    exit_notices: dict[str, ctl.UpstreamExited] = field(default_factory=dict)  # node -> as sent (see _redeliver)
    status: str = Status.PENDING
    peers_sent: bool = False
    stopped: bool = False
    started_at: float = field(default_factory=time.time)
    pending_deadline: float = 0.0
    pending_error: str = ""
    ended_at: float | None = None
    start_warned: bool = False  # told the user which nodes hold the start barrier
    ship: str = ctl.ShipMode.NEVER
    bundle: ctl.BundleRef | None = None
    folder_id: str = ""
    path: str = ""  # the YAML file on the CLI's machine
    folder_fetched_at: float = 0.0  # last time a daemon fetched a chunk of this run's bundle
    machines: dict[str, str] = field(default_factory=dict)  # node -> machine id of its daemon
    placed_at: float = 0.0  # Unix time its nodes were sent to their daemons (start-up deadline)
    stop_term_at: float | None = None  # monotonic: when the stop's grace ends (the earliest asked)
    stop_deadline: float | None = None  # monotonic: when a stopping run ends anyway (contract.stop_bound)
    stop_grace: float = 0.0  # the grace period that deadline was set for
    stop_sent: dict[bytes, float] = field(default_factory=dict)  # daemon -> monotonic time StopNodes went
    deadline_passed_at: float | None = None  # monotonic: the stop's deadline ended it with nodes unconfirmed
    # For the daemons only (SpawnNodes): they derive each node's data-plane reader token from it.
    reader_secret: str = field(default_factory=lambda: secrets.token_hex(32))

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

    def add_log(self, node: str, stream: str, line: str) -> LogEntry:
        """Keep the recent lines of each node of this dataflow for ``dora-zmq logs`` (lines of
        a node it does not have are not kept); returns the entry."""
        if len(line) > LOG_LINE_MAX:
            line = line[:LOG_LINE_MAX] + f" [... {len(line) - LOG_LINE_MAX} characters cut]"
        entry = (time.time(), stream, line)
        if node in self.nodes:
            self.logs.setdefault(node, deque(maxlen=LOG_LINES_KEPT)).append(entry)
        return entry

    def select_logs(self, node: str | None, since: float, tail: int) -> list[tuple[str, LogEntry]]:
        """Kept lines of ``node`` (None: every node, in arrival order) at or after ``since``;
        the last ``tail`` of them (0: all)."""
        nodes = [node] if node is not None else list(self.logs)
        streams = [[(entry, n) for entry in self.logs.get(n, ())] for n in nodes]
        selected = [(n, entry) for entry, n in heapq.merge(*streams, key=lambda item: item[0][0]) if entry[0] >= since]
        return selected[-tail:] if tail else selected

    def add_stats(self, node: str, drops: dict[str, int], lost: dict[str, int]) -> None:
        """Record a node's counters, for its declared inputs only (the table stays bounded)."""
        if node not in self.nodes:
            return
        inputs = self.descriptor.node(node).inputs
        for counts, table in ((drops, self.drops), (lost, self.lost)):
            table.update({f"{node}/{k}": v for k, v in counts.items() if v and k in inputs})

    def info(self) -> ctl.DataflowInfo:
        """The row for ``dora-zmq list``."""
        return ctl.DataflowInfo(
            self.id,
            self.name,
            self.status,
            dict(self.nodes),
            list(self.failures),
            dict(self.drops),
            self.started_at,
            dict(self.lost),
            self.pending_error,
            self.ended_at,
            dict(self.machines),
            dict(self.restarts),
            dict(self.undelivered),
        )

    def result(self) -> ctl.DataflowResult:
        """The final report sent to attached clients."""
        return ctl.DataflowResult(
            self.id,
            self.name,
            not self.failures and not self.pending_error,
            list(self.failures),
            self.stopped,
            dict(self.drops),
            dict(self.lost),
            self.pending_error,
            dict(self.undelivered),
        )
