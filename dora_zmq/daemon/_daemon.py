"""The daemon's event loop: one per machine; spawns, watches and stops that machine's nodes.

It sits between the coordinator (a DEALER to its ROUTER) and the local nodes (its own
ROUTER). It is never on the data path: nodes publish to each other directly.

This module decides what happens when; each piece of the work has its own module:

- ``_identity``: who the daemon is to the coordinator, and who may speak for which node;
- ``_dataflows``: from a ``SpawnNodes`` to a ``DataflowState`` (``_state``) and its run folder;
- ``_spawning``: starting one node, and the queue that spreads a dataflow's spawns over passes;
- ``_supervisor``: the node processes, their stop ladder and reaping; ``_logs``: their output;
- ``_restart``: ``restart_policy``; ``_exit_reports``: exits resent until acknowledged;
- ``_shipments``: shipped dataflow folders; ``_heartbeat``, ``_resources``, ``_rundir``.

Threading: ``serve_forever`` runs on one thread, which owns all of the daemon's state (its
dataflows, the retired senders, the spawn queue, the supervisor and both sockets). Any thread
may call ``request_shutdown`` (it sets ``_stop`` and the grace the loop reads, and wakes the
loop through ``_wakeup``) and ``close``; a log reader thread wakes it when a node's pipe closes.
The rest reaches the loop through a queue or an event it polls: log lines from the reader
threads (``Supervisor.log_lines``), unpacked folders from the shipments' worker; the heartbeat
thread has its own socket and reads only the ``accepted`` event the loop sets.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from .. import _control as ctl
from .._control import ENV_DAEMON, ENV_DATAFLOW, ENV_MACHINE, ENV_NODE, StopReason
from .._errors import ControlError, DescriptorError
from .._shm import cleanup_stale
from .._transport import Channel, Poller, Wakeup
from .._version import __version__
from ..descriptor import NodeKind, NodeSpec, parse_dataflow
from ..security import Peer
from ..tracing import LifecycleTracer
from ._dataflows import new_dataflow, node_setup, nodes_to_spawn, remove_dataflow_files
from ._exit_reports import ExitReports
from ._ready_reports import ReadyReports
from ._heartbeat import HeartbeatThread
from ._identity import check_identities, check_token, control_identity, find_dynamic, key_refusal, sender_refusal
from ._logs import log_messages
from ._resources import ResourceSampler, SampledProcess
from ._rundir import create_run_dir, daemon_endpoint, sweep_stale_run_dirs
from ._shipments import Shipments, missing_folder
from ._spawning import SpawnQueue, start_node
from ._state import DataflowState, Senders
from ._supervisor import ExitInfo, Supervisor

__all__ = ["Daemon", "ENV_DAEMON", "ENV_DATAFLOW", "ENV_MACHINE", "ENV_NODE"]

log = logging.getLogger(__name__)

_RESOURCES_S = 1.0  # how often node CPU/memory go to the coordinator (`dora-zmq top`)
_REGISTER_RETRY_S = 1.0
# How long a pass of the loop waits for a message when no spawn is queued: the loop also
# reaps, restarts and relays logs between messages, so this bounds how late those are.
_IDLE_POLL_MS = 50
# After a wake-up (a node's output closed), the loop polls this often for this long: the
# process exits a moment after its pipes close.
_RECHECK_MS = 2
_RECHECK_S = 0.05
#: On SIGTERM/SIGINT nodes get STOP and this grace (README: "Stopping a daemon"); then gone by EXIT_BOUND_S.
SHUTDOWN_GRACE_S = 10.0
# After the grace: the stop ladder's end (SIGTERM, KILL_AFTER_TERM_S, SIGKILL) and reaping.
_LADDER_END_S = 5.0
# Closing once the nodes are gone: the supervisor's last reaping, the goodbye to the coordinator.
_CLOSING_S = 5.0
EXIT_BOUND_S = SHUTDOWN_GRACE_S + _LADDER_END_S + _CLOSING_S
# How long closing waits for DaemonExiting and the last exit reports to leave.
_GOODBYE_LINGER_MS = 500
# Dataflows whose nodes all exited: their senders are kept a while, because a node's last
# reports (final NodeStats) may be read after its exit was, and must still be verified.
_RETIRED_KEPT = 32
#: What a node reports when it was stopped before its process was started.
STOPPED_BEFORE_START = "stopped before it started"


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
        cache_dir: where shipped dataflow folders are kept (``<cache_dir>/daemon-<machine>``;
            default ``$DORA_ZMQ_CACHE_DIR`` or ``~/.cache/dora-zmq``), made on first use.
        accept_shipped: run nodes from folders shipped by the coordinator; False runs only
            folders present on this machine at the CLI's path (``--no-shipped``).
    """

    def __init__(
        self,
        coordinator: str,
        machine_id: str = "",
        *,
        run_dir: Path | None = None,
        tcp_bind: str = "",
        advertise: str = "",
        cache_dir: Path | None = None,
        accept_shipped: bool = True,
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
            self.nodes = Channel.serve(daemon_endpoint(self.run_dir))  # where sweepers look (._rundir)
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
            ident = control_identity(machine_id)
            self.coordinator = Channel.connect(coordinator, identity=ident)
            self.identity = ident.encode()  # of its control connection (Coordinator.add_in_process_daemon)
        except BaseException:
            self.nodes.close()
            self._remove_run_dir()
            raise
        # Wakes the loop at once when a node's output closes (it exited) or a shutdown is
        # asked for: otherwise each waits for the next poll (_IDLE_POLL_MS).
        self._wakeup = Wakeup()
        self.supervisor = Supervisor(self._wakeup.notify)
        self._exit_reports = ExitReports()  # resent until the coordinator has them
        self._ready_reports = ReadyReports()  # resent until a Peers table lists them
        self._spawns = SpawnQueue()  # nodes to start, a slice per pass of the loop (._spawning)
        self._heartbeat = HeartbeatThread(coordinator, ident, machine_id)  # beats even while the loop is busy
        self._shipments = Shipments(cache_dir, machine_id, self.coordinator.send)
        self.accept_shipped = accept_shipped
        self._resources = ResourceSampler()
        cleanup_stale()  # segments left by writers that died with an earlier daemon
        self._dataflows: dict[str, DataflowState] = {}
        self._retired: OrderedDict[str, Senders] = OrderedDict()
        self._stop = threading.Event()
        self._recheck_until = 0.0  # monotonic: poll briefly until then (see _RECHECK_MS)
        self._shutdown_deadline: float | None = None
        self._accepted = False
        #: Why the coordinator refused this daemon ("" if it did not): the CLI exits with it.
        self.refused = ""
        self._tracer = LifecycleTracer(f"dora-daemon-{machine_id}" if machine_id else "dora-daemon", "daemon")

    @property
    def node_address(self) -> str:
        """Where this daemon's nodes connect."""
        return self.nodes.address

    def request_shutdown(self, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        """Thread-safe: stop every node (bounded ladder) and leave ``serve_forever``; called
        again with a shorter grace (a second Ctrl-C), the nodes get that one."""
        self._pending_grace = min(grace_s, self._pending_grace) if self._stop.is_set() else grace_s
        self._stop.set()
        self._wakeup.notify()

    _pending_grace = SHUTDOWN_GRACE_S
    _begun_grace: float | None = None

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
        poller = Poller([self.coordinator, self.nodes, self._wakeup])
        self._heartbeat.start()
        next_beat = next_register = next_resources = 0.0
        try:
            while True:
                now = time.monotonic()
                if self._stop.is_set() and self._pending_grace != self._begun_grace:
                    self._begin_shutdown(self._pending_grace)
                if not self._accepted and now >= next_register:
                    self._register()
                    next_register = now + _REGISTER_RETRY_S
                timeout = _RECHECK_MS if now < self._recheck_until else _IDLE_POLL_MS
                for member in poller.wait(0 if self._spawns else timeout):
                    self._drain(member)
                self._spawn_queued()
                self._reap()
                self._finish_shipments()
                self._restart_due()
                self._flush_logs()
                if self._accepted and now >= next_beat:
                    exits = {df.id: sorted({e.node for e in df.exits}) for df in self._dataflows.values()}
                    # this one also gets "register again"
                    self.coordinator.send(ctl.DaemonHeartbeat(self.machine_id, exits))
                    for report in [*self._exit_reports.due(), *self._ready_reports.due()]:
                        self.coordinator.send(report)
                    next_beat = now + ctl.HEARTBEAT_INTERVAL_S
                if self._accepted and now >= next_resources:
                    self._send_resources()
                    next_resources = now + _RESOURCES_S
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
                self.machine_id,
                __version__,
                ctl.PROTOCOL_VERSION,
                socket.gethostname(),
                os.getpid(),
                self.node_addresses,
                self.advertise,
            )
        )

    def _send_resources(self) -> None:
        procs = []
        for p in self.supervisor.running():
            df = self._dataflows.get(p.dataflow_id)
            restarts = df.restarts.count(p.node) if df is not None and df.restarts is not None else 0
            procs.append(SampledProcess(p.dataflow_id, p.node, p.pid, restarts))
        if procs:
            self.coordinator.send(ctl.NodeResources(self.machine_id, self._resources.sample(procs)))

    def _drain(self, member: Channel | Wakeup) -> None:
        if isinstance(member, Wakeup):
            member.clear()  # what it woke the loop for is done by this pass...
            # ...but a pipe closes a moment before its process can be reaped: look again soon
            self._recheck_until = time.monotonic() + _RECHECK_S
            return
        while (got := member.recv_from(0)) is not None:
            peer, sender, msg = got
            try:
                if member is self.coordinator:
                    self._on_coordinator(msg)
                elif self._node_key_allows(peer, sender, msg):
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
                log.warning(
                    "daemon '%s': the coordinator does not know this daemon (it restarted?); registering again",
                    self.machine_id,
                )
                self._accepted = False
                self._heartbeat.accepted.clear()
            case ctl.DaemonAccepted(error=error):
                if error:
                    log.error("coordinator refused daemon '%s': %s", self.machine_id, error)
                    self.refused = error
                    self._stop.set()
                else:
                    self._accepted = True
                    self._heartbeat.accepted.set()
                    log.info(
                        "daemon '%s' registered with the coordinator at %s", self.machine_id, self.coordinator.address
                    )
            case ctl.SpawnNodes():
                self._spawn_dataflow(msg)
            case ctl.BundleChunk():
                self._shipments.on_chunk(msg)
            case ctl.BundleUnavailable():
                self._shipments.on_unavailable(msg)
            case ctl.Peers(dataflow_id=df_id):
                if (df := self._dataflows.get(df_id)) is not None:
                    df.last_peers = msg
                    self._ready_reports.confirmed_by(msg)
                    self._to_nodes(df, msg)
            case ctl.UpstreamExited(dataflow_id=df_id):
                if (df := self._dataflows.get(df_id)) is not None and df.note_exit(msg):
                    self._to_nodes(df, msg)
            case ctl.ExitReported(dataflow_id=df_id, node=node):
                self._exit_reports.acknowledged(df_id, node)
            case ctl.UpstreamRestarted(dataflow_id=df_id):
                if (df := self._dataflows.get(df_id)) is not None:
                    self._to_nodes(df, msg)
            case ctl.StopNodes(dataflow_id=df_id, grace_s=grace, reason=reason, trace_context=parent):
                if (df := self._dataflows.get(df_id)) is not None:
                    self._tracer.instant(
                        f"stop nodes of {df.name}", parent, dataflow_id=df_id, machine=self.machine_id, grace_s=grace
                    )
                    self._stop_dataflow(df, grace, reason)
            case ctl.ShutdownDaemon(grace_s=grace):
                self.request_shutdown(grace)
            case ctl.Probe():
                pass  # the coordinator checks that this connection is open
            case _:
                log.debug("daemon ignores %r", msg)

    def _spawn_dataflow(self, msg: ctl.SpawnNodes) -> None:
        # Every node named here ends in a spawn or a reported failure: one left unreported
        # would keep the dataflow in "spawning" for ever.
        if msg.dataflow_id in self._dataflows or msg.dataflow_id in self._retired:
            return  # a copy the coordinator sent again (coordinator/_redeliver.py: SpawnResends)
        df = new_dataflow(msg, self.run_dir, accept_shipped=self.accept_shipped)
        if isinstance(df, str):
            log.warning("daemon '%s': cannot start dataflow %r here: %s", self.machine_id, msg.dataflow_id, df)
            for node in msg.nodes:
                self._report_exit(msg.dataflow_id, node, ExitInfo.not_started(df))
            return
        self._dataflows[df.id] = df
        if df.shipped:
            assert msg.bundle is not None  # runs_in_place says True without one
            self._shipments.request(df.id, msg.bundle, df.working_dir)  # spawned in _finish_shipments
            return
        if not df.working_dir.is_dir():
            self._fail_dataflow(df, missing_folder(df.working_dir, self.machine_id, refused=msg.bundle is not None))
            return
        self._spawn_nodes(df)

    def _spawn_nodes(self, df: DataflowState) -> None:
        queued, unknown = nodes_to_spawn(df)
        for node_id, why in unknown.items():
            self._report_exit(df.id, node_id, ExitInfo.not_started(why))
        self._spawns.add(df.id, queued)  # started by _spawn_queued, a slice per pass of the loop

    def _spawn_queued(self) -> None:
        for df_id, node_id in self._spawns.due():
            if (df := self._dataflows.get(df_id)) is not None:
                self._spawn_node(df, df.descriptor.node(node_id))
                self._tracer.instant(
                    f"spawn node {node_id}",
                    df.trace_context,
                    dataflow_id=df.id,
                    node_id=node_id,
                    machine=self.machine_id,
                )

    def _finish_shipments(self) -> None:
        """Spawn the nodes of dataflows whose shipped folder is ready; fail those whose is not."""
        for df_id, folder, error in self._shipments.poll():
            df = self._dataflows.get(df_id)
            if df is None or not df.waiting_for_folder:
                continue
            df.waiting_for_folder = False
            if error:
                machine = self.machine_id or "(default)"
                self._fail_dataflow(df, f"could not ship the dataflow's folder to machine '{machine}': {error}")
                continue
            if df.stopping:  # stopped while its folder was on the way: nothing to start
                for node in df.nodes:
                    self._report_exit(df.id, node, ExitInfo.not_started(STOPPED_BEFORE_START, failed=False))
                self._forget(df)
                continue
            try:  # again, now that the files are there: `path: tool` may name one of them
                df.descriptor = parse_dataflow(df.yaml, working_dir=folder, check_paths=False)
            except DescriptorError as exc:
                self._fail_dataflow(df, f"invalid dataflow: {exc}")
                continue
            self._spawn_nodes(df)

    def _fail_dataflow(self, df: DataflowState, reason: str) -> None:
        """Report every node of ``df`` on this machine failed with ``reason``, and forget it."""
        log.error("dataflow %s: %s", df.id, reason)
        for node in df.nodes:
            self._report_exit(df.id, node, ExitInfo.not_started(reason))
        self._forget(df)

    def _spawn_node(self, df: DataflowState, spec: NodeSpec) -> None:
        why = start_node(self.supervisor, df, spec, self.run_dir, self.node_address, self.machine_id)
        if why:
            self._report_exit(df.id, spec.id, ExitInfo.not_started(why))

    def _stop_dataflow(self, df: DataflowState, grace_s: float, reason: str) -> None:
        df.stopping = reason or StopReason.MANUAL
        self._to_nodes(df, ctl.StopNode(df.stopping))
        self.supervisor.request_stop(df.id, grace_s)
        for node in self._spawns.drop(df.id):
            self._end_node(df, node, ExitInfo.not_started(STOPPED_BEFORE_START, failed=False))
        for node, info in df.restarts.call_off() if df.restarts else ():  # not begun: called off
            self._end_node(df, node, info)

    def _begin_shutdown(self, grace_s: float) -> None:
        self._begun_grace = grace_s
        deadline = time.monotonic() + grace_s + _LADDER_END_S
        self._shutdown_deadline = min(deadline, self._shutdown_deadline or deadline)
        log.info(
            "daemon '%s' stopping: %d node(s) get %g s to exit",
            self.machine_id,
            len(self.supervisor.running()),
            grace_s,
        )
        for df in list(self._dataflows.values()):
            if df.stopping:  # told STOP already: only the ladder is shortened
                self.supervisor.request_stop(df.id, grace_s)
            else:
                self._stop_dataflow(df, grace_s, StopReason.MANUAL)

    # ---- node side ---------------------------------------------------------------------

    def _on_node(self, peer: bytes, msg: Any) -> None:
        match msg:
            case ctl.RegisterNode():
                self._register_node(peer, msg)
            case ctl.NodeBound(dataflow_id=df_id, node=node, endpoint=endpoint):
                # Always sent on the registered socket: an unverified sender is never enough.
                if self._from_node(peer, msg, df_id, node, unverified_ok=False):
                    self.coordinator.send(self._ready_reports.report(ctl.NodeReady(df_id, node, endpoint)))
            case ctl.NodeStats(dataflow_id=df_id, node=node) | ctl.RequestStop(dataflow_id=df_id, node=node):
                if self._from_node(peer, msg, df_id, node, unverified_ok=True):
                    if isinstance(msg, ctl.NodeStats):
                        self._exit_reports.note_stats(msg)
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
        df = self._dataflows.get(msg.dataflow_id) or find_dynamic(self._dataflows.values(), msg.node)
        if msg.protocol != ctl.PROTOCOL_VERSION:
            why = f"protocol {msg.protocol} != daemon's {ctl.PROTOCOL_VERSION}; upgrade dora_zmq"
            self.nodes.send(ctl.RegisterRefused(why), to=peer)
            return
        if df is None or msg.node not in df.nodes:
            where = f"dataflow '{msg.dataflow_id}'" if msg.dataflow_id else "any running dataflow on this machine"
            self.nodes.send(ctl.RegisterRefused(f"node '{msg.node}' is not part of {where}"), to=peer)
            return
        sender = msg.sender_identity.encode()
        refused = check_identities(df, msg.node, peer, sender) or check_token(df, msg)
        if refused:
            log.warning(
                "daemon refused node '%s' of dataflow %s from connection %r: %s", msg.node, df.id, peer, refused
            )
            self.nodes.send(ctl.RegisterRefused(refused), to=peer)
            return
        df.peers[msg.node] = peer
        df.senders.bind(msg.node, [peer, sender] if sender else [peer], announced=bool(sender))
        self.nodes.send(node_setup(df, msg.node, self.machine_id, self.tcp_bind, self.advertise), to=peer)
        for exited in df.exits:
            if exited.node not in df.peers:  # not a dynamic node that came back since
                self.nodes.send(exited, to=peer)
        if df.last_peers is not None:  # the endpoint table so far (updates follow as they come)
            self.nodes.send(df.last_peers, to=peer)

    def _node_key_allows(self, peer: bytes, sender: Peer, msg: Any) -> bool:
        """True if the connection's key may speak as the node ``msg`` names (``key_refusal``)."""
        why = key_refusal(sender, msg, self._dataflows)
        if not why:
            return True
        log.warning(
            "daemon refused %s for node '%s' from connection %r: %s",
            type(msg).__name__,
            getattr(msg, "node", None),
            peer,
            why,
        )
        if isinstance(msg, ctl.RegisterNode):
            self.nodes.send(ctl.RegisterRefused(why), to=peer)
        return False

    def _from_node(self, peer: bytes, msg: Any, df_id: str, node: str, *, unverified_ok: bool) -> bool:
        """True if ``peer`` may send ``msg`` as ``node`` of ``df_id``; logs and says False if not
        (``sender_refusal``; a dataflow that ended is still checked, for a node's last reports)."""
        df = self._dataflows.get(df_id)
        senders = df.senders if df is not None else self._retired.get(df_id)
        why = sender_refusal(senders, peer, msg, df_id, node, unverified_ok=unverified_ok)
        if why:
            log.warning("%s", why)
        return not why

    def _to_nodes(self, df: DataflowState, msg: Any) -> None:
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

    def _end_node(self, df: DataflowState, node: str, info: ExitInfo) -> None:
        """A node's process ended for good: report it, and forget a dataflow with none left."""
        df.live.discard(node)
        self._report_exit(df.id, node, info)
        if not df.live:
            self._forget(df)

    # ---- restart_policy (the rules: ._restart) -----------------------------------------------

    def _schedule_restart(self, df: DataflowState, node: str, info: ExitInfo, stopped: bool) -> bool:
        """Apply the node's restart_policy to an exit; True if it will be started again."""
        if df.restarts is None:
            return False
        stopping = bool(df.stopping) or stopped
        exited = [e.node for e in df.exits]
        decision = df.restarts.decide(node, info, time.monotonic(), stopping=stopping, exited=exited)
        if decision.why:
            log.info("dataflow %s: node %s is not restarted: %s", df.id, node, decision.why)
        if decision.restart:
            state = df.restarts.states[node]
            self.coordinator.send(
                ctl.NodeRestarting(
                    df.id,
                    node,
                    state.count,
                    info.exit_code,
                    info.signal,
                    info.failed,
                    info.reason,
                    decision.delay_s,
                    state.limit,
                )
            )  # the coordinator tells the user (run, attach) and counts it (list)
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

    def _forget(self, df: DataflowState) -> None:
        # the unpacking worker may be writing into ipc_dir/work
        if df.waiting_for_folder or self._spawns.pending(df.id):
            return
        if any(df.descriptor.node(n).kind is NodeKind.DYNAMIC for n in df.peers):
            return
        self._dataflows.pop(df.id, None)
        self._ready_reports.forget_dataflow(df.id)
        self._retired[df.id] = df.senders
        while len(self._retired) > _RETIRED_KEPT:
            self._retired.popitem(last=False)
        remove_dataflow_files(df)

    def _report_exit(self, df_id: str, node: str, info: ExitInfo) -> None:
        if info.failed:
            log.info(
                "dataflow %s: node %s failed: exit %s signal %s %s",
                df_id,
                node,
                info.exit_code,
                info.signal,
                info.reason,
            )
        self._ready_reports.forget(df_id, node)
        self.coordinator.send(
            self._exit_reports.report(
                ctl.NodeExited(
                    df_id,
                    node,
                    info.exit_code,
                    info.signal,
                    info.failed,
                    info.reason,
                    info.stderr_tail,
                    self.machine_id,
                )
            )
        )

    def _flush_logs(self) -> None:
        q = self.supervisor.log_lines
        lines: list[tuple[str, str, str, str]] = []
        while not q.empty():
            lines.append(q.get_nowait())
        for msg in log_messages(lines):
            self.coordinator.send(msg)

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._shipments.close()
            self._heartbeat.stop()
            exited = self.supervisor.tick() + self.supervisor.close()
            self._flush_logs()  # last lines first, as in _reap
            for proc, info in exited:
                self._report_exit(proc.dataflow_id, proc.node, info)
            for df in self._dataflows.values():  # restarts that will not happen now
                for node, info in df.restarts.call_off() if df.restarts else ():
                    self._report_exit(df.id, node, info)
            try:
                if not self.refused:  # a refused daemon never was the coordinator's
                    self.coordinator.send(ctl.DaemonExiting(self.machine_id))
            except ControlError:
                pass
            self._tracer.close()
            self.coordinator.close(_GOODBYE_LINGER_MS)
            self.nodes.close()
        finally:
            self._wakeup.close()
            self._remove_run_dir()
        log.info("daemon '%s' stopped", self.machine_id)

    def _remove_run_dir(self) -> None:
        if self._own_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
