"""The daemon: one per machine; spawns, watches and stops that machine's nodes.

It sits between the coordinator (a DEALER to its ROUTER) and the local nodes (its own
ROUTER). It is never on the data path: nodes publish to each other directly.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _control as ctl
from .._errors import ControlError, DescriptorError
from .._shm import cleanup_segments, cleanup_stale
from .._transport import Channel, Poller, ipc_endpoint
from .._version import __version__
from ..descriptor import Dataflow, NodeKind, NodeSpec, parse_dataflow
from ..tracing import LifecycleTracer
from ._restart import RestartBook
from ._rundir import create_run_dir, sweep_stale_run_dirs
from ._supervisor import ExitInfo, Supervisor

__all__ = ["Daemon", "ENV_DAEMON", "ENV_DATAFLOW", "ENV_MACHINE", "ENV_NODE"]

log = logging.getLogger(__name__)

# The node side reads these (dora_zmq.node._config); the names are the contract.
ENV_DAEMON = "DORA_ZMQ_DAEMON"
ENV_NODE = "DORA_NODE_ID"
ENV_DATAFLOW = "DORA_DATAFLOW_ID"
ENV_MACHINE = "DORA_ZMQ_MACHINE"

_HEARTBEAT_S = 0.5
_REGISTER_RETRY_S = 1.0
# Dataflows whose nodes all exited: their senders are kept a while, because a node's last
# reports (final NodeStats) may be read after its exit was, and must still be verified.
_RETIRED_KEPT = 32


@dataclass(slots=True)
class _Senders:
    """Which control connections may speak for which node of one dataflow.

    A node's messages are accepted only from the connection it registered on and the second
    socket it announced in ``RegisterNode.sender_identity``: the node id written inside a
    message is a claim, the ZeroMQ routing id is who sent it.
    """

    nodes: frozenset[str] = frozenset()  # the dataflow's nodes this daemon runs
    by_identity: dict[bytes, str] = field(default_factory=dict)
    # Nodes that registered without announcing their second socket (older nodes): what it
    # sends (close-time NodeStats, NodeClosing, RequestStop) cannot be told from a forgery.
    unverified: set[str] = field(default_factory=set)

    def bind(self, node: str, identities: list[bytes], announced: bool) -> None:
        """``identities`` are now ``node``'s, and only they (a node registering again)."""
        for ident in [i for i, n in self.by_identity.items() if n == node]:
            del self.by_identity[ident]
        for ident in identities:
            self.by_identity[ident] = node
        if announced:
            self.unverified.discard(node)
        else:
            self.unverified.add(node)


@dataclass(slots=True)
class _Dataflow:
    """What this daemon knows of one dataflow it runs nodes for."""

    id: str
    name: str
    yaml: str
    descriptor: Dataflow
    working_dir: Path
    ipc_dir: Path
    nodes: list[str]
    multi_machine: bool
    peers: dict[str, bytes] = field(default_factory=dict)  # node -> control identity (replies)
    senders: _Senders = field(default_factory=_Senders)
    last_peers: ctl.Peers | None = None
    stopping: str = ""
    grace_s: float = 10.0
    live: set[str] = field(default_factory=set)
    # Every UpstreamExited relayed so far, replayed to nodes that register later: a node still
    # importing its libraries when an upstream already ended (e.g. a short shell script) must
    # learn whether that upstream failed, not only that it is gone (``Peers.exited``).
    exits: list[ctl.UpstreamExited] = field(default_factory=list)
    restarts: RestartBook | None = None  # restart_policy records (a pending restart keeps a node live)


class Daemon:
    """Runs the nodes of one machine for the coordinator at ``coordinator``.

    Its run folder goes when it closes (``serve_forever`` ending, or ``close()``); starting,
    it removes the run folders of daemons that were killed (see ``sweep_stale_run_dirs``).

    Args:
        coordinator: the coordinator's control address (``tcp://host:port``).
        machine_id: the name ``deploy.machine`` uses for this machine ("" = default).
        run_dir: where ipc sockets live (a private temporary folder by default).
        tcp_bind: interface nodes bind tcp data sockets on, for peers on other machines.
        advertise: the host name or address other machines reach this one by.
    """

    def __init__(
        self,
        coordinator: str,
        machine_id: str = "",
        *,
        run_dir: Path | None = None,
        tcp_bind: str = "",
        advertise: str = "",
    ) -> None:
        self.machine_id = machine_id
        self._own_run_dir = run_dir is None
        # Run folders of daemons that were killed (they could not remove their own).
        sweep_stale_run_dirs()
        self.run_dir = Path(run_dir) if run_dir is not None else create_run_dir()
        self.tcp_bind = tcp_bind
        self.advertise = advertise
        self._serving = False
        self._closed = False
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.nodes = Channel.serve(ipc_endpoint(str(self.run_dir), "daemon"))
        except BaseException:
            self._remove_run_dir()
            raise
        self.node_addresses = [self.nodes.address]
        try:
            if tcp_bind:
                # Dynamic nodes on other hosts (edge devices) register over tcp.
                bound = self.nodes.bind(f"tcp://{tcp_bind}:*")
                port = bound.rsplit(":", 1)[1]
                self.node_addresses.append(f"tcp://{advertise or tcp_bind}:{port}")
            self.coordinator = Channel.connect(coordinator, identity=f"daemon/{machine_id}/{socket.gethostname()}/{os.getpid()}")
        except BaseException:
            self.nodes.close()
            self._remove_run_dir()
            raise
        self.supervisor = Supervisor()
        cleanup_stale()  # segments left by writers that died with an earlier daemon
        self._dataflows: dict[str, _Dataflow] = {}
        self._retired: OrderedDict[str, _Senders] = OrderedDict()
        self._stop = threading.Event()
        self._shutdown_deadline: float | None = None
        self._accepted = False
        self._tracer = LifecycleTracer(f"dora-daemon-{machine_id}" if machine_id else "dora-daemon", "daemon")

    @property
    def node_address(self) -> str:
        """Where this daemon's nodes connect."""
        return self.nodes.address

    def request_shutdown(self, grace_s: float = 10.0) -> None:
        """Thread-safe: stop every node (bounded ladder) and leave ``serve_forever``."""
        self._stop.set()
        self._pending_grace = grace_s

    _pending_grace = 10.0

    def close(self) -> None:
        """Release a daemon whose ``serve_forever`` never ran (sockets, run folder; idempotent).

        ``serve_forever`` closes on its own when it ends; while it runs (on another thread),
        this only asks it to shut down, and the caller joins that thread.
        """
        if self._serving:
            self.request_shutdown(0.0)
            return
        self._close()

    def __enter__(self) -> "Daemon":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def serve_forever(self) -> None:
        """Run the event loop until shut down; always stops and reaps every node."""
        if self._closed:
            raise RuntimeError("this daemon was closed")
        self._serving = True
        poller = Poller([self.coordinator, self.nodes])
        next_beat = next_register = 0.0
        try:
            while True:
                now = time.monotonic()
                if self._stop.is_set() and self._shutdown_deadline is None:
                    self._begin_shutdown(self._pending_grace)
                if not self._accepted and now >= next_register:
                    self._register()
                    next_register = now + _REGISTER_RETRY_S
                for member in poller.wait(50):
                    self._drain(member)
                self._reap()
                self._restart_due()
                self._flush_logs()
                if self._accepted and now >= next_beat:
                    self.coordinator.send(ctl.DaemonHeartbeat(self.machine_id))
                    next_beat = now + _HEARTBEAT_S
                if self._shutdown_deadline is not None and (
                    not self.supervisor.running() or now > self._shutdown_deadline
                ):
                    break
        finally:
            self._serving = False
            self._close()

    # ---- coordinator side --------------------------------------------------------------

    def _register(self) -> None:
        self.coordinator.send(
            ctl.RegisterDaemon(
                self.machine_id, __version__, ctl.PROTOCOL_VERSION, socket.gethostname(), os.getpid(), self.node_addresses
            )
        )

    def _drain(self, member: Channel) -> None:
        while (got := member.recv_nowait()) is not None:
            peer, msg = got
            try:
                if member is self.coordinator:
                    self._on_coordinator(msg)
                else:
                    self._on_node(peer, msg)
            except Exception as exc:  # noqa: BLE001 - see below
                # The codec checks the shape of a message, not its sense: a well-formed message
                # naming an unknown node, or with a field of the wrong type, must cost that one
                # message, not this loop (which would take every node of the machine with it).
                log.warning("daemon dropped %s from %r: %s: %s", type(msg).__name__, peer, type(exc).__name__, exc)
                log.debug("handler error", exc_info=True)

    def _on_coordinator(self, msg: Any) -> None:
        match msg:
            case ctl.DaemonAccepted(register_again=True):
                log.warning("daemon '%s': the coordinator does not know this daemon (it restarted?); registering again", self.machine_id)
                self._accepted = False
            case ctl.DaemonAccepted(error=error):
                if error:
                    log.error("coordinator refused daemon '%s': %s", self.machine_id, error)
                    self._stop.set()
                else:
                    self._accepted = True
                    log.info("daemon '%s' registered with the coordinator at %s", self.machine_id, self.coordinator.address)
            case ctl.SpawnNodes():
                self._spawn_dataflow(msg)
            case ctl.Peers(dataflow_id=df_id):
                if (df := self._dataflows.get(df_id)) is not None:
                    df.last_peers = msg
                    self._to_nodes(df, msg)
            case ctl.UpstreamExited(dataflow_id=df_id):
                if (df := self._dataflows.get(df_id)) is not None:
                    df.exits.append(msg)
                    self._to_nodes(df, msg)
            case ctl.UpstreamRestarted(dataflow_id=df_id):
                if (df := self._dataflows.get(df_id)) is not None:
                    self._to_nodes(df, msg)
            case ctl.StopNodes(dataflow_id=df_id, grace_s=grace, reason=reason, trace_context=parent):
                if (df := self._dataflows.get(df_id)) is not None:
                    self._tracer.instant(f"stop nodes of {df.name}", parent, dataflow_id=df_id, machine=self.machine_id, grace_s=grace)
                    self._stop_dataflow(df, grace, reason)
            case ctl.ShutdownDaemon(grace_s=grace):
                self.request_shutdown(grace)
            case _:
                log.debug("daemon ignores %r", msg)

    def _spawn_dataflow(self, msg: ctl.SpawnNodes) -> None:
        working_dir = Path(msg.working_dir)
        if not working_dir.is_dir():
            working_dir = Path.cwd()
        try:
            descriptor = parse_dataflow(msg.yaml, working_dir=working_dir, check_paths=False)
        except DescriptorError as exc:
            for node in msg.nodes:
                self._report_exit(msg.dataflow_id, node, ExitInfo(None, None, True, f"invalid dataflow: {exc}", ""))
            return
        ipc_dir = self.run_dir / msg.dataflow_id[:12]
        ipc_dir.mkdir(parents=True, exist_ok=True)
        df = _Dataflow(
            msg.dataflow_id, msg.name, msg.yaml, descriptor, working_dir, ipc_dir, list(msg.nodes), msg.multi_machine,
            senders=_Senders(frozenset(msg.nodes)), restarts=RestartBook(descriptor),
        )
        self._dataflows[df.id] = df
        for node_id in msg.nodes:
            spec = descriptor.node(node_id)
            if spec.kind is NodeKind.DYNAMIC:
                continue
            self._spawn_node(df, spec)
            self._tracer.instant(f"spawn node {node_id}", msg.trace_context, dataflow_id=df.id, node_id=node_id, machine=self.machine_id)

    def _spawn_node(self, df: _Dataflow, spec: NodeSpec) -> None:
        argv = self._argv(df, spec)
        if isinstance(argv, str):
            self._report_exit(df.id, spec.id, ExitInfo(None, None, True, argv, ""))
            return
        env = dict(os.environ)
        env.update(spec.env)
        env.update({
            ENV_DAEMON: self.node_address,
            ENV_NODE: spec.id,
            ENV_DATAFLOW: df.id,
            ENV_MACHINE: self.machine_id,
            "PYTHONUNBUFFERED": "1",
        })
        log_path = self._log_path(df, spec.id)
        try:
            self.supervisor.spawn(df.id, spec.id, argv, env, df.working_dir, log_path)
        except OSError as exc:
            self._report_exit(df.id, spec.id, ExitInfo(None, None, True, f"could not start {argv[0]}: {exc}", ""))
            return
        df.live.add(spec.id)

    @staticmethod
    def _argv(df: _Dataflow, spec: NodeSpec) -> list[str] | str:
        if spec.kind is NodeKind.RUNTIME:
            return [sys.executable, "-u", "-m", "dora_zmq.operators"]
        path = spec.executable
        if path is None and spec.path:
            candidate = Path(spec.path) if os.path.isabs(spec.path) else df.working_dir / spec.path
            path = candidate if candidate.exists() else (Path(w) if (w := shutil.which(spec.path)) else None)
        if path is None or not path.exists():
            return f"node '{spec.id}': path '{spec.path}' not found (looked in {df.working_dir} and on PATH)"
        if path.suffix == ".py":
            return [sys.executable, "-u", str(path), *spec.args]
        return [str(path), *spec.args]

    def _log_path(self, df: _Dataflow, node: str) -> Path:
        for base in (df.working_dir / "out" / df.id, self.run_dir / "logs" / df.id):
            try:
                base.mkdir(parents=True, exist_ok=True)
                return base / f"log_{node}.txt"
            except OSError:
                continue
        return self.run_dir / f"log_{df.id}_{node}.txt"

    def _stop_dataflow(self, df: _Dataflow, grace_s: float, reason: str) -> None:
        df.stopping = reason or "MANUAL"
        df.grace_s = grace_s
        self._to_nodes(df, ctl.StopNode(df.stopping))
        self.supervisor.request_stop(df.id, grace_s)
        for node, info in df.restarts.call_off() if df.restarts else ():  # not begun: called off
            self._end_node(df, node, info)

    def _begin_shutdown(self, grace_s: float) -> None:
        self._shutdown_deadline = time.monotonic() + grace_s + 5.0
        for df in list(self._dataflows.values()):
            self._stop_dataflow(df, grace_s, "MANUAL")

    # ---- node side ---------------------------------------------------------------------

    def _on_node(self, peer: bytes, msg: Any) -> None:
        match msg:
            case ctl.RegisterNode():
                self._register_node(peer, msg)
            case ctl.NodeBound(dataflow_id=df_id, node=node, endpoint=endpoint):
                # Always sent on the registered socket: an unverified sender is never enough.
                if self._from_node(peer, msg, df_id, node, unverified_ok=False):
                    self.coordinator.send(ctl.NodeReady(df_id, node, endpoint))
            case ctl.NodeStats(dataflow_id=df_id, node=node) | ctl.RequestStop(dataflow_id=df_id, node=node):
                if self._from_node(peer, msg, df_id, node, unverified_ok=True):
                    self.coordinator.send(msg)
            case ctl.NodeClosing(dataflow_id=df_id, node=node, error=error):
                if not self._from_node(peer, msg, df_id, node, unverified_ok=True):
                    return
                df = self._dataflows.get(df_id)
                if df is not None and df.restarts is not None and msg.inputs_closed:
                    df.restarts.inputs_closed.add(node)  # known here before its exit is reaped
                if df is not None and df.descriptor.node(node).kind is NodeKind.DYNAMIC:
                    df.peers.pop(node, None)
                    info = ExitInfo(1 if error else 0, None, bool(error), error, "")
                    self._report_exit(df_id, node, info)
            case _:
                log.debug("daemon ignores node message %r", msg)

    def _register_node(self, peer: bytes, msg: ctl.RegisterNode) -> None:
        df = self._dataflows.get(msg.dataflow_id) or self._find_dynamic(msg.node)
        if msg.protocol != ctl.PROTOCOL_VERSION:
            self.nodes.send(ctl.RegisterRefused(f"protocol {msg.protocol} != daemon's {ctl.PROTOCOL_VERSION}; upgrade dora_zmq"), to=peer)
            return
        if df is None or msg.node not in df.nodes:
            where = f"dataflow '{msg.dataflow_id}'" if msg.dataflow_id else "any running dataflow on this machine"
            self.nodes.send(ctl.RegisterRefused(f"node '{msg.node}' is not part of {where}"), to=peer)
            return
        sender = msg.sender_identity.encode()
        refused = self._check_identities(df, msg.node, peer, sender)
        if refused:
            log.warning("daemon refused node '%s' of dataflow %s from connection %r: %s", msg.node, df.id, peer, refused)
            self.nodes.send(ctl.RegisterRefused(refused), to=peer)
            return
        df.peers[msg.node] = peer
        df.senders.bind(msg.node, [peer, sender] if sender else [peer], announced=bool(sender))
        has_dynamic = any(n.kind is NodeKind.DYNAMIC for n in df.descriptor.nodes)
        # Peers on other hosts (other daemons' nodes, dynamic nodes) need tcp endpoints.
        tcp_bind = f"tcp://{self.tcp_bind}:*" if (df.multi_machine or has_dynamic) and self.tcp_bind else ""
        self.nodes.send(
            ctl.NodeSetup(
                df.id, msg.node, df.yaml, str(df.working_dir), self.machine_id, str(df.ipc_dir),
                tcp_bind, self.advertise, stopping=bool(df.stopping),
                restart_count=df.restarts.count(msg.node) if df.restarts else 0,
            ),
            to=peer,
        )
        for exited in df.exits:
            if exited.node not in df.peers:  # not a dynamic node that came back since
                self.nodes.send(exited, to=peer)
        if df.last_peers is not None:  # the endpoint table so far (updates follow as they come)
            self.nodes.send(df.last_peers, to=peer)

    @staticmethod
    def _check_identities(df: _Dataflow, node: str, peer: bytes, sender: bytes) -> str:
        """Why a registration's connections cannot be ``node``'s ("" if they can)."""
        for ident, what in ((peer, "this connection"), (sender, "the announced sender identity")):
            owner = df.senders.by_identity.get(ident) if ident else None
            if owner is not None and owner != node:
                return f"{what} is node '{owner}' of this dataflow already"
        if sender and (sender == peer or len(sender) > 255 or sender.startswith(b"\0")):
            # ZeroMQ reserves routing ids starting with a zero byte for the ones it assigns.
            return f"invalid sender identity {sender!r} (1 to 255 bytes, not starting with a zero byte, not the registering connection's)"
        return ""

    def _from_node(self, peer: bytes, msg: Any, df_id: str, node: str, *, unverified_ok: bool) -> bool:
        """True if ``peer`` may send ``msg`` as ``node`` of ``df_id``; logs and says False if not.

        Args:
            unverified_ok: accept a connection that is no node's from a node that did not
                announce its second socket (older nodes send their last reports from there).
        """
        df = self._dataflows.get(df_id)
        senders = df.senders if df is not None else self._retired.get(df_id)
        if senders is None:
            log.warning("daemon dropped %s for node '%s': this daemon runs no dataflow %s (sent by connection %r)", type(msg).__name__, node, df_id, peer)
            return False
        owner = senders.by_identity.get(peer)
        if owner == node or (owner is None and unverified_ok and node in senders.unverified):
            return True
        actual = f"node '{owner}'" if owner is not None else "no node of that dataflow"
        if node not in senders.nodes:
            log.warning(
                "daemon dropped %s: this daemon runs no node '%s' in dataflow %s (sent by connection %r, which is %s)",
                type(msg).__name__, node, df_id, peer, actual,
            )
        else:
            log.warning(
                "daemon dropped %s claiming to come from node '%s' of dataflow %s: it was sent by connection %r, which is %s",
                type(msg).__name__, node, df_id, peer, actual,
            )
        return False

    def _find_dynamic(self, node: str) -> _Dataflow | None:
        for df in self._dataflows.values():
            if node in df.nodes and df.descriptor.node(node).kind is NodeKind.DYNAMIC and not df.stopping:
                return df
        return None

    def _to_nodes(self, df: _Dataflow, msg: Any) -> None:
        for node, peer in list(df.peers.items()):
            if not self.nodes.send(msg, to=peer):
                df.peers.pop(node, None)

    # ---- processes ----------------------------------------------------------------------

    def _reap(self) -> None:
        exited = self.supervisor.tick()
        if exited:
            # A node sends its last reports (final NodeStats, NodeClosing) before it exits:
            # handle what has arrived while its dataflow is still known, and before its exit.
            self._drain(self.nodes)
            # tick() drained the pipes of what exited: send those last lines before the exit
            # reports, or the dataflow may end (and `run` stop printing) without them.
            self._flush_logs()
        for proc, info in exited:
            df = self._dataflows.get(proc.dataflow_id)
            if df is None:
                self._report_exit(proc.dataflow_id, proc.node, info)
                continue
            df.peers.pop(proc.node, None)
            if not self._schedule_restart(df, proc.node, info, stopped=bool(proc.signalled)):
                self._end_node(df, proc.node, info)

    def _end_node(self, df: _Dataflow, node: str, info: ExitInfo) -> None:
        """A node's process ended for good: report it, and forget a dataflow with none left."""
        df.live.discard(node)
        self._report_exit(df.id, node, info)
        if not df.live:
            self._forget(df)

    # ---- restart_policy (the rules: ._restart) -----------------------------------------------

    def _schedule_restart(self, df: _Dataflow, node: str, info: ExitInfo, stopped: bool) -> bool:
        """Apply the node's restart_policy to an exit; True if it will be started again."""
        if df.restarts is None:
            return False
        stopping = bool(df.stopping) or stopped
        decision = df.restarts.decide(node, info, time.monotonic(), stopping=stopping, exited=[e.node for e in df.exits])
        if decision.why:
            log.info("dataflow %s: node %s is not restarted: %s", df.id, node, decision.why)
        if decision.restart:
            state = df.restarts.states[node]
            self.coordinator.send(ctl.NodeRestarting(
                df.id, node, state.count, info.exit_code, info.signal, info.failed, info.reason, decision.delay_s, state.limit,
            ))  # the coordinator tells the user (run, attach) and counts it (list)
        return decision.restart

    def _restart_due(self) -> None:
        now = time.monotonic()
        for df in list(self._dataflows.values()):
            for node in df.restarts.due(now) if df.restarts else ():
                self._spawn_node(df, df.descriptor.node(node))
                if self.supervisor.get(df.id, node) is None:  # could not start: reported already
                    df.live.discard(node)
                    if not df.live:
                        self._forget(df)

    def _forget(self, df: _Dataflow) -> None:
        if any(df.descriptor.node(n).kind is NodeKind.DYNAMIC for n in df.peers):
            return
        self._dataflows.pop(df.id, None)
        self._retired[df.id] = df.senders
        while len(self._retired) > _RETIRED_KEPT:
            self._retired.popitem(last=False)
        shutil.rmtree(df.ipc_dir, ignore_errors=True)
        # Shared-memory messages nobody released (a crashed node, or an exit before a
        # receiver mapped them) are only safe to remove once every local node is gone.
        removed = cleanup_segments(df.id)
        if removed:
            log.info("dataflow %s: removed %d shared-memory segment(s)", df.id, removed)

    def _report_exit(self, df_id: str, node: str, info: ExitInfo) -> None:
        if info.failed:
            log.info("dataflow %s: node %s failed: exit %s signal %s %s", df_id, node, info.exit_code, info.signal, info.reason)
        self.coordinator.send(
            ctl.NodeExited(df_id, node, info.exit_code, info.signal, info.failed, info.reason, info.stderr_tail, self.machine_id)
        )

    def _flush_logs(self) -> None:
        batches: dict[tuple[str, str, str], list[str]] = {}
        q = self.supervisor.log_lines
        while not q.empty():
            df_id, node, stream, line = q.get_nowait()
            batches.setdefault((df_id, node, stream), []).append(line)
        for (df_id, node, stream), lines in batches.items():
            self.coordinator.send(ctl.NodeLogs(df_id, node, lines, stream))

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            exited = self.supervisor.tick() + self.supervisor.close()
            self._flush_logs()  # last lines first, as in _reap
            for proc, info in exited:
                self._report_exit(proc.dataflow_id, proc.node, info)
            for df in self._dataflows.values():  # restarts that will not happen now
                for node, info in df.restarts.call_off() if df.restarts else ():
                    self._report_exit(df.id, node, info)
            try:
                self.coordinator.send(ctl.DaemonExiting(self.machine_id))
            except ControlError:
                pass
            self._tracer.close()
            self.coordinator.close(500)
            self.nodes.close()
        finally:
            self._remove_run_dir()
        log.info("daemon '%s' stopped", self.machine_id)

    def _remove_run_dir(self) -> None:
        if self._own_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
