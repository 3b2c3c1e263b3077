"""The coordinator: accepts dataflows from the CLI, places their nodes on daemons, and
distributes lifecycle events (peers, node exits, STOP). It is never on the data path.

One ROUTER socket serves both the CLI and the daemons; every message type has one handler.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import _control as ctl
from .._bundle import short_digest
from .._errors import BundleError, DescriptorError, NodeFailure
from .._transport import Channel, Poller, Wakeup
from .._version import __version__
from ..descriptor import NodeKind, parse_dataflow
from ..security import Peer
from ..tracing import LifecycleTracer
from ._access import DAEMON_REPORTS, refusal
from ._accounting import undelivered
from ._bundles import BundleService
from ._deadlines import UNREACHABLE_AFTER_S, late_exit_text, spawn_unconfirmed, stop_unconfirmed, unconfirmed_reason
from ._liveness import PROBE_EVERY_S, judge
from ._observe import daemon_infos, node_stats
from .._cache import BoundedCache
from ._redeliver import SpawnResends, exit_notice, missing_exits, orphaned_dataflows
from ._state import DaemonRecord, DataflowRun, LogWatcher, NodeState, Status

__all__ = ["Coordinator", "DEFAULT_PORT", "DEFAULT_ADDRESS"]

log = logging.getLogger(__name__)

DEFAULT_PORT = ctl.DEFAULT_PORT
DEFAULT_ADDRESS = ctl.DEFAULT_COORDINATOR
MACHINE_WAIT_S = ctl.MACHINE_WAIT_S
# After this long without every node started, say which ones the others are waiting for.
START_WARN_S = float(os.environ.get("DORA_ZMQ_START_WARN", "5"))
DEFAULT_GRACE_S = 10.0
ORPHAN_STOP_EVERY_S = 5.0  # nodes of a dataflow unknown or ended this long ago are stopped (again after as long)
_FINISHED_KEPT = 50
#: Clients attached to one dataflow (``start --attach``, ``logs --follow``) at most.
_WATCHERS_PER_DATAFLOW = 64


class Coordinator:
    """Serves the control plane on ``bind`` until :meth:`request_shutdown` or ``Destroy``.

    Args:
        bind: the control address.
        cache_dir: where shipped dataflow folders are kept (``<cache_dir>/coordinator``;
            default ``$DORA_ZMQ_CACHE_DIR`` or ``~/.cache/dora-zmq``), made on first use.
    """

    def __init__(self, bind: str = DEFAULT_ADDRESS, *, cache_dir: Path | None = None) -> None:
        self.channel = Channel.serve(bind)
        self._bundles = BundleService(cache_dir, self._pinned_bundles)
        self._daemons: dict[bytes, DaemonRecord] = {}
        self._in_process: set[bytes] = set()  # daemons in this process: never lost (._liveness)
        self._dataflows: dict[str, DataflowRun] = {}
        self._watchers: dict[str, list[LogWatcher]] = {}
        self._spawn_waiters: dict[str, list[bytes]] = {}  # dataflow id -> CLIs in WaitForSpawn
        self._started_at = time.monotonic()
        self._stop = threading.Event()
        self._wakeup = Wakeup()  # request_shutdown wakes the loop's wait (its only other thread)
        self._exit_at: float | None = None
        self._tracer = LifecycleTracer("dora-coordinator", "coordinator")
        self._spans: dict[tuple[str, str], Any] = {}  # (dataflow id, phase) -> open span
        self._spawns = SpawnResends()  # until each daemon's heartbeat lists the dataflow
        self._orphans: BoundedCache[tuple[bytes, str], float] = BoundedCache(1000)  # (daemon, dataflow) -> stop sent at

    @property
    def address(self) -> str:
        """The bound control address (with the real port when bound to port 0)."""
        return self.channel.address

    def add_in_process_daemon(self, identity: bytes) -> None:
        """Before ``serve_forever``: the daemon with this control identity runs in this
        process (``dora-zmq run``), so it is never declared lost for being silent."""
        self._in_process.add(identity)

    def request_shutdown(self) -> None:
        """Thread-safe: leave ``serve_forever`` now (its wait is woken)."""
        self._stop.set()
        self._wakeup.notify()

    def serve_forever(self) -> None:
        """Run the event loop until shut down."""
        poller = Poller([self.channel, self._wakeup])
        log.info("coordinator listening on %s", self.address)
        try:
            while not self._stop.is_set():
                ready = poller.wait(100)
                if self._wakeup in ready:
                    self._wakeup.clear()
                if self.channel in ready:
                    while (got := self.channel.recv_from(0)) is not None:
                        self._dispatch_safely(*got)
                self._tick()
                if self._exit_at is not None and (not self._daemons or time.monotonic() > self._exit_at):
                    break
        finally:
            self._bundles.close()
            for span in self._spans.values():
                span.end()
            self._tracer.close()
            self.channel.close()
            self._wakeup.close()
            log.info("coordinator stopped")

    def _dispatch_safely(self, peer: bytes, sender: Peer, msg: Any) -> None:
        try:
            if self._admit(peer, sender, msg):
                self._dispatch(peer, sender, msg)
        except Exception as exc:  # noqa: BLE001 - see below
            # The codec checks the shape of a message, not its sense (a node id nobody knows, a
            # field of the wrong type): such a message is dropped, the control plane goes on.
            log.warning("coordinator dropped %s from %r: %s: %s", type(msg).__name__, peer, type(exc).__name__, exc)
            log.debug("handler error", exc_info=True)

    def _admit(self, peer: bytes, sender: Peer, msg: Any) -> bool:
        """True if this connection may send ``msg`` (see ``_access``); says why not if it may not."""
        if peer.endswith(ctl.HEARTBEAT_ID_SUFFIX):
            self._heartbeat_connection(peer, sender, msg)
            return False
        why = refusal(sender, msg)
        if not why and isinstance(msg, DAEMON_REPORTS):
            why = self._report_refusal(peer, sender, msg)
        if not why:
            if peer in self._daemons:
                self._daemons[peer].heard(time.monotonic(), True, UNREACHABLE_AFTER_S)
            return True
        log.warning("coordinator refused %s from connection %r: %s", type(msg).__name__, peer, why)
        if isinstance(msg, ctl.RegisterDaemon):
            self.channel.send(ctl.DaemonAccepted(why), to=peer)
        elif not isinstance(msg, DAEMON_REPORTS):
            self.channel.send(ctl.Failed(why), to=peer)
        return False

    def _heartbeat_connection(self, peer: bytes, sender: Peer, msg: Any) -> None:
        """A beat from a daemon's heartbeat thread counts for the daemon whose control
        connection it is named after, if it comes with the key that daemon registered with."""
        record = self._daemons.get(peer[: -len(ctl.HEARTBEAT_ID_SUFFIX)])
        if not isinstance(msg, ctl.DaemonHeartbeat):
            why = "a heartbeat connection carries heartbeats only"
        elif record is None:
            log.debug("coordinator: heartbeat from %r, whose daemon is not registered (yet)", peer)
            return
        else:
            why = refusal(sender, msg) or (
                ""
                if record.key == sender
                else f"the daemon registered with {record.key.describe()}, this beat came with {sender.describe()}"
            )
        if why or record is None:
            log.warning("coordinator refused %s from connection %r: %s", type(msg).__name__, peer, why)
            return
        record.heard(time.monotonic(), False, UNREACHABLE_AFTER_S)

    def _report_refusal(self, peer: bytes, sender: Peer, msg: Any) -> str:
        """Why a daemon report cannot come from this connection ("" if it can)."""
        record = self._daemons.get(peer)
        if record is None:
            if isinstance(msg, ctl.DaemonHeartbeat):  # this coordinator restarted, or declared it lost
                self.channel.send(ctl.DaemonAccepted(register_again=True), to=peer)
            return "no daemon registered on this connection"
        if record.key != sender:
            return f"the daemon registered with {record.key.describe()}, this message came with {sender.describe()}"
        node = getattr(msg, "node", None)
        if node is None:
            return ""
        run = self._dataflows.get(msg.dataflow_id)
        if run is None or run.placement.get(node) == peer:
            return ""  # an unknown dataflow is dropped by its handler
        return f"node '{node}' of dataflow {run.name} does not run on daemon '{record.machine_id or '(default)'}'"

    def _dispatch(self, peer: bytes, sender: Peer, msg: Any) -> None:
        match msg:
            # CLI requests
            case ctl.StartDataflow():
                self._start(peer, msg)
            case ctl.StopDataflow(dataflow=ref, grace_s=grace):
                self._stop_request(peer, ref, grace)
            case ctl.ListDataflows():
                self.channel.send(ctl.DataflowList([d.info() for d in self._dataflows.values()]), to=peer)
            case ctl.Attach(dataflow=ref, logs=logs):
                self._attach(peer, ref, logs)
            case ctl.FetchLogs():
                self._fetch_logs(peer, msg)
            case ctl.WaitForSpawn(dataflow=ref):
                self._wait_for_spawn(peer, ref)
            case ctl.GetStatus():
                self.channel.send(
                    ctl.CoordinatorStatus(
                        self.address,
                        __version__,
                        round(time.monotonic() - self._started_at, 3),
                        daemon_infos(self._daemons.values(), self._dataflows.values()),
                        [d.info() for d in self._dataflows.values()],
                    ),
                    to=peer,
                )
            case ctl.GetNodeStats(dataflow=ref):
                self._send_node_stats(peer, ref)
            case ctl.ResolveNode(node=node, dataflow=ref):
                self._resolve_node(peer, node, ref)
            case ctl.OfferBundle(bundle=bundle):
                self.channel.send(self._bundles.offer(peer, bundle), to=peer)
            case ctl.BundleChunk():
                self.channel.send(self._bundles.chunk(peer, msg), to=peer)
            case ctl.Ping():
                self.channel.send(ctl.Pong(__version__, sorted(d.machine_id for d in self._daemons.values())), to=peer)
            case ctl.Destroy():
                self._destroy(peer)
            # daemon reports
            case ctl.RegisterDaemon():
                self._register_daemon(peer, sender, msg)
            case ctl.DaemonHeartbeat(exits=exits):
                # _admit noted it; exits it missed (a connection that dropped) go again
                for notice in missing_exits(self._dataflows.values(), peer, exits or {}):
                    self.channel.send(notice, to=peer)
                self._stop_again(peer, exits or {})
                self._stop_orphans(peer, exits or {})
                for spawn in self._spawns.due(self._dataflows, peer, exits or {}):
                    log.warning(
                        "dataflow %s: daemon '%s' has not got its nodes %s"
                        " (lost with a dropped connection?): sent again",
                        spawn.name,
                        self._daemons[peer].machine_id if peer in self._daemons else "?",
                        ", ".join(spawn.nodes),
                    )
                    self.channel.send(spawn, to=peer)
            case ctl.DaemonExiting():
                self._daemon_lost(peer, "daemon exited", expected=True)
            case ctl.FetchBundle():
                if peer in self._daemons:  # only a registered daemon is served a bundle
                    self.channel.send(self._bundles.fetch(msg), to=peer)
                    self._folder_arriving(peer, msg.digest)
                else:
                    log.warning("coordinator: FetchBundle from %r, which is no registered daemon, refused", peer)
            case ctl.NodeReady():
                self._node_ready(msg)
            case ctl.NodeRestarting():
                self._node_restarting(msg)
            case ctl.NodeExited():
                self._node_exited(msg)  # a copy of a known exit changes nothing
                self.channel.send(ctl.ExitReported(msg.dataflow_id, msg.node), to=peer)  # it stops resending
            case ctl.NodeLogs():
                self._node_logs(msg)
            case ctl.NodeStats(dataflow_id=df_id, node=node, drops=drops, lost=lost):
                # Only the daemon running a node relays its reports.
                if (run := self._dataflows.get(df_id)) is not None and run.placement.get(node) == peer:
                    run.add_stats(node, drops, lost or {})
                    run.stats[node] = msg
                    run.stats_at[node] = time.monotonic()
            case ctl.NodeResources(samples=samples):
                for sample in samples:  # only the daemon running a node speaks for its process
                    run = self._dataflows.get(sample.dataflow_id)
                    if run is not None and sample.node in run.nodes and run.placement.get(sample.node) == peer:
                        run.resources[sample.node] = sample
            case ctl.RequestStop(dataflow_id=df_id, node=node, reason=reason):
                if (run := self._dataflows.get(df_id)) is not None:
                    log.info(
                        "dataflow %s: node %s asked to stop the dataflow (%s)", run.name, node, reason or "STOP_ALL"
                    )
                    self._stop_run(run, DEFAULT_GRACE_S)
            case _:
                log.warning("coordinator: unexpected message %r from %r", msg, peer)

    # ---- dataflows ----------------------------------------------------------------------

    def _start(self, peer: bytes, msg: ctl.StartDataflow) -> None:
        try:
            descriptor = parse_dataflow(
                msg.yaml,
                path=Path(msg.path) if msg.path else None,
                working_dir=Path(msg.working_dir),
                check_paths=False,
            )
        except DescriptorError as exc:
            self.channel.send(ctl.Failed(str(exc)), to=peer)
            return
        shipping = self._check_shipping(msg)
        if shipping:
            self.channel.send(ctl.Failed(shipping), to=peer)
            return
        name = msg.name or ""
        if name and any(d.name == name and not d.finished for d in self._dataflows.values()):
            self.channel.send(
                ctl.Failed(f"a dataflow named '{name}' is already running; stop it or pick another --name"), to=peer
            )
            return
        df_id = str(uuid.uuid4())
        run = DataflowRun(df_id, name or df_id[:8], descriptor, msg.yaml, msg.working_dir, msg.local)
        run.ship, run.bundle, run.folder_id, run.path = msg.ship, msg.bundle, msg.folder_id, msg.path
        run.nodes = {
            n.id: NodeState.WAITING if n.kind is NodeKind.DYNAMIC else NodeState.SPAWNING for n in descriptor.nodes
        }
        run.pending_deadline = time.monotonic() + MACHINE_WAIT_S
        self._dataflows[df_id] = run
        self._open_span(run, "start", f"start dataflow {run.name}", nodes=len(descriptor.nodes))
        self._prune_finished()
        self.channel.send(ctl.DataflowStarted(df_id, run.name, MACHINE_WAIT_S), to=peer)
        log.info("dataflow %s (%s): %d nodes", run.name, df_id, len(descriptor.nodes))
        self._try_place(run)

    def _check_shipping(self, msg: ctl.StartDataflow) -> str:
        """Why this start's shipping request cannot be served ("" if it can)."""
        # Issue 12 (CURVE roles): starting a dataflow, shipped or not, runs code on the daemons'
        # machines: only a client with the operator role may; the check goes here.
        if msg.ship not in ctl.ShipMode.ALL:
            return f"unknown ship mode {msg.ship!r} (use {', '.join(ctl.ShipMode.ALL)})"
        if msg.ship == ctl.ShipMode.NEVER:
            return ""
        if msg.bundle is None:
            return f"--ship {msg.ship} needs the folder's bundle; upload it first (dora-zmq start does)"
        try:
            if self._bundles.has(msg.bundle.digest):
                return ""
        except BundleError as exc:
            return str(exc)
        return (
            f"bundle {short_digest(msg.bundle.digest)} is not on the coordinator"
            " (not uploaded, or evicted since): start again"
        )

    def _folder_arriving(self, daemon: bytes, digest: str) -> None:
        """A daemon is still fetching a bundle: its nodes are not slow to call Node(), they
        have not started yet (the start warning counts from the last chunk)."""
        for run in self._dataflows.values():
            if run.bundle is not None and run.bundle.digest == digest and not run.peers_sent and daemon in run.daemons:
                run.folder_fetched_at = time.time()

    def _pinned_bundles(self) -> set[str]:
        """Bundles of dataflows not finished: daemons may still fetch them."""
        return {run.bundle.digest for run in self._dataflows.values() if run.bundle is not None and not run.finished}

    def _try_place(self, run: DataflowRun) -> None:
        """Place nodes on daemons; spawn once every machine the dataflow names has one."""
        placement, missing = self._placement(run)
        if missing:
            if time.monotonic() < run.pending_deadline:
                return
            self._fail_placement(run, missing)
            return
        run.placement = placement
        run.machines = {node: self._daemons[ident].machine_id for node, ident in placement.items()}
        run.status = Status.RUNNING
        run.placed_at = time.time()
        for waiter in self._spawn_waiters.pop(run.id, []):
            self.channel.send(ctl.Ok(_placed(run)), to=waiter)
        by_daemon: dict[bytes, list[str]] = {}
        for node, ident in placement.items():
            by_daemon.setdefault(ident, []).append(node)
        multi = len(by_daemon) > 1
        parent = self._tracer.context_of(self._spans.get((run.id, "start")))
        for ident, nodes in by_daemon.items():
            spawn = ctl.SpawnNodes(
                run.id,
                run.name,
                run.yaml,
                run.working_dir,
                nodes,
                multi,
                parent,
                ship=run.ship,
                bundle=run.bundle,
                folder_id=run.folder_id,
                path=run.path,
                reader_secret=run.reader_secret,
            )
            self._spawns.sent(ident, spawn)
            self.channel.send(spawn, to=ident)
        self._publish_peers(run)

    def _fail_placement(self, run: DataflowRun, missing: dict[str, list[str]]) -> None:
        """No daemon came for some machines within MACHINE_WAIT_S: fail, saying which and how."""
        texts = {machine: self._no_daemon_text(machine, nodes) for machine, nodes in sorted(missing.items())}
        run.pending_error = "; ".join(texts.values())
        for machine, nodes in sorted(missing.items()):
            for node in nodes:
                run.nodes[node] = NodeState.FAILED
                reason = f"not started: no daemon for {_machine_name(machine)} connected within {MACHINE_WAIT_S:g} s"
                run.failures.append(ctl.FailureRecord(node=node, reason=reason, machine=machine))
                at, _, _ = run.add_log(node, "dora", texts[machine])  # `dora-zmq logs` says why
                self._notify(run, ctl.LogLine(run.id, node, texts[machine], "dora", at))
        self._finish(run, Status.FAILED)

    def _no_daemon_text(self, machine: str, nodes: list[str]) -> str:
        host = self.address.removeprefix("tcp://").rpartition(":")[0]
        reachable = self.address if host not in ("0.0.0.0", "*", "[::]", "") else "<this coordinator's address>"  # noqa: S104
        if machine:
            how = f"start one there with `dora-zmq daemon --machine-id {machine} --coordinator {reachable}`"
        else:
            how = (
                f"start one with `dora-zmq daemon --coordinator {reachable}`"
                " (no --machine-id: this is the default machine)"
            )
        return f"no daemon for {_machine_name(machine)} (nodes: {', '.join(nodes)}): {how}"

    def _placement(self, run: DataflowRun) -> tuple[dict[str, bytes], dict[str, list[str]]]:
        by_machine = {d.machine_id: ident for ident, d in self._daemons.items()}
        placement: dict[str, bytes] = {}
        missing: dict[str, list[str]] = {}
        for node in run.descriptor.nodes:
            machine = "" if run.local else run.descriptor.machine_of(node.id)
            ident = by_machine.get(machine)
            if ident is None and (run.local or machine == "") and len(self._daemons) >= 1:
                ident = by_machine.get("") or next(iter(self._daemons))
            if ident is None:
                missing.setdefault(machine, []).append(node.id)
            else:
                placement[node.id] = ident
        return placement, missing

    def _publish_peers(self, run: DataflowRun) -> None:
        """Broadcast the endpoint table whenever it changes.

        Each node starts as soon as *its* upstream nodes are bound (or gone), not when the
        whole graph is: a program that never calls Node() delays only the nodes it feeds.
        """
        if run.status == Status.PENDING:
            return
        self._broadcast(run, ctl.Peers(run.id, dict(run.endpoints), run.exited()))
        if not run.peers_sent and run.all_started():
            run.peers_sent = True
            self._close_span(run, "start")

    def _stop_request(self, peer: bytes, ref: str, grace: float | None) -> None:
        run = self._find(ref)
        if run is None:
            self.channel.send(ctl.Failed(self._unknown(ref)), to=peer)
            return
        if run.finished:
            self.channel.send(ctl.Ok(f"dataflow '{run.name}' already ended ({run.status})"), to=peer)
            return
        self._stop_run(run, DEFAULT_GRACE_S if grace is None else grace)
        self.channel.send(ctl.Ok(f"stopping dataflow '{run.name}'"), to=peer)

    def _stop_run(self, run: DataflowRun, grace: float) -> None:
        if run.finished:  # e.g. a node's STOP_ALL that arrives after the end: it stays ended
            return
        run.stopped = True
        if run.status == Status.PENDING:
            self._finish(run, Status.FINISHED)
            return
        run.status = Status.STOPPING
        now = time.monotonic()
        # The daemons keep the earliest end of grace asked for; so does the deadline.
        run.stop_term_at = min(run.stop_term_at or float("inf"), now + max(0.0, grace))
        if run.stop_deadline is None or now + ctl.stop_bound(grace) < run.stop_deadline:
            run.stop_deadline, run.stop_grace = now + ctl.stop_bound(grace), max(0.0, grace)
        span = self._open_span(run, "stop", f"stop dataflow {run.name}", grace_s=grace)
        self._broadcast(run, ctl.StopNodes(run.id, grace, trace_context=self._tracer.context_of(span)))
        run.stop_sent.update(dict.fromkeys(run.daemons, now))

    def _stop_again(self, peer: bytes, running: dict[str, list[str]]) -> None:
        """A daemon heard from again after a silence still runs (``running``'s keys) a dataflow
        being stopped or ended: the StopNodes it was sent may have been lost with its
        connection, so it gets one again (with what is left of the grace). Daemons and nodes
        ignore a repeated stop."""
        record = self._daemons.get(peer)
        if record is None or not record.resumed_at:
            return
        now = time.monotonic()
        for df_id in running:
            run = self._dataflows.get(df_id)
            if (
                run is None
                or not run.stopped
                or peer not in run.daemons
                or run.stop_sent.get(peer, 0.0) >= record.resumed_at
            ):
                continue
            grace = 0.0 if run.finished or run.stop_term_at is None else max(0.0, run.stop_term_at - now)
            log.info(
                "dataflow %s: daemon '%s' is back; sending it the stop again (grace %.1f s)",
                run.name,
                record.machine_id or "(default)",
                grace,
            )
            self.channel.send(ctl.StopNodes(run.id, grace), to=peer)
            run.stop_sent[peer] = now

    def _attach(self, peer: bytes, ref: str, logs: bool) -> None:
        """Stream a dataflow's new log lines (if ``logs``) and its result when it ends."""
        run = self._accept_stream(peer, ref, None)
        if run is None:
            return
        if run.finished:
            self.channel.send(run.result(), to=peer)
        else:
            self._watchers.setdefault(run.id, []).append(LogWatcher(peer, logs))

    def _fetch_logs(self, peer: bytes, msg: ctl.FetchLogs) -> None:
        """The kept lines selected, then (``follow``) new ones until the dataflow ends."""
        node = None if msg.all_nodes else msg.node
        run = self._accept_stream(peer, msg.dataflow, node, msg.follow)
        if run is None:
            return
        for name, (at, stream, line) in run.select_logs(node, msg.since, max(0, msg.tail)):
            self.channel.send(ctl.LogLine(run.id, name, line, stream, at), to=peer)
        if run.finished or not msg.follow:
            self.channel.send(run.result(), to=peer)
        else:
            self.channel.send(ctl.Ok("end of kept lines"), to=peer)
            self._watchers.setdefault(run.id, []).append(LogWatcher(peer, True, node))

    def _accept_stream(self, peer: bytes, ref: str, node: str | None, follow: bool = True) -> DataflowRun | None:
        """The dataflow a streaming request names, after telling the CLI ``Ok`` (else ``Failed``:
        no such dataflow or node, or too many clients following it already)."""
        run = self._find(ref)
        if run is None:
            self.channel.send(ctl.Failed(self._unknown(ref)), to=peer)
            return None
        if node is not None and node not in run.nodes:
            self.channel.send(
                ctl.Failed(f"dataflow '{run.name}' has no node '{node}' (nodes: {', '.join(run.nodes)})"), to=peer
            )
            return None
        if follow and not run.finished:
            watchers = self._watchers.setdefault(run.id, [])
            if len(watchers) >= _WATCHERS_PER_DATAFLOW:  # drop those whose client has gone
                watchers[:] = [w for w in watchers if self.channel.send(ctl.Probe(), to=w.peer)]
            if len(watchers) >= _WATCHERS_PER_DATAFLOW:
                self.channel.send(
                    ctl.Failed(f"dataflow '{run.name}' has {len(watchers)} attached clients already; detach one first"),
                    to=peer,
                )
                return None
        self.channel.send(ctl.Ok(run.id), to=peer)
        return run

    def _wait_for_spawn(self, peer: bytes, ref: str) -> None:
        run = self._find(ref)
        if run is None:
            self.channel.send(ctl.Failed(self._unknown(ref)), to=peer)
        elif run.status == Status.PENDING:
            self._spawn_waiters.setdefault(run.id, []).append(peer)
        elif run.pending_error:
            self.channel.send(ctl.Failed(f"dataflow '{run.name}' failed: {run.pending_error}"), to=peer)
        else:
            self.channel.send(ctl.Ok(_placed(run) if not run.finished else f"it already ended ({run.status})"), to=peer)

    def _send_node_stats(self, peer: bytes, ref: str) -> None:
        if ref:
            run = self._find(ref)
            if run is None:
                self.channel.send(ctl.Failed(self._unknown(ref)), to=peer)
                return
            runs = [run]
        else:
            runs = [d for d in self._dataflows.values() if not d.finished]
        self.channel.send(ctl.NodeStatsList(time.time(), node_stats(runs)), to=peer)

    # ---- daemon reports ------------------------------------------------------------------

    def _register_daemon(self, peer: bytes, sender: Peer, msg: ctl.RegisterDaemon) -> None:
        if msg.protocol != ctl.PROTOCOL_VERSION:
            self.channel.send(
                ctl.DaemonAccepted(
                    f"protocol {msg.protocol} != coordinator's {ctl.PROTOCOL_VERSION}; use the same dora_zmq version"
                ),
                to=peer,
            )
            return
        for ident, record in list(self._daemons.items()):
            if record.machine_id != msg.machine_id or ident == peer:
                continue
            if self.channel.send(ctl.Probe(), to=ident):
                # Its connection is open: the running daemon keeps its place (an impostor must
                # not evict it and receive its next SpawnNodes, with the YAML's env: secrets).
                text = (
                    f"machine id '{msg.machine_id or '(default)'}' is taken by a running daemon "
                    f"(host {record.hostname}, pid {record.pid}); stop it first or pick another --machine-id"
                )
                log.warning(
                    "coordinator refused a second daemon for machine '%s' (host %s, pid %d): %s",
                    msg.machine_id or "(default)",
                    msg.hostname,
                    msg.pid,
                    text,
                )
                self.channel.send(ctl.DaemonAccepted(text), to=peer)
                return
            self._daemon_lost(ident, "its connection closed; a new daemon registered the same machine id")
        self._daemons[peer] = DaemonRecord(
            peer,
            msg.machine_id,
            msg.hostname,
            msg.pid,
            list(msg.node_addresses or []),
            sender,
            version=msg.version,
            advertise=msg.advertise,
        )
        self.channel.send(ctl.DaemonAccepted(), to=peer)
        log.info("daemon '%s' connected (%s, pid %d)", msg.machine_id or "(default)", msg.hostname, msg.pid)

    def _stop_orphans(self, peer: bytes, known: dict[str, list[str]]) -> None:
        """Stop the nodes a daemon runs for dataflows that are over here, or unknown (a restart)."""
        now = time.monotonic()
        for df_id, why in orphaned_dataflows(self._dataflows, known, ORPHAN_STOP_EVERY_S):
            if now - self._orphans.get((peer, df_id), -ORPHAN_STOP_EVERY_S) < ORPHAN_STOP_EVERY_S:
                continue
            self._orphans.put((peer, df_id), now)
            record = self._daemons.get(peer)
            log.warning(
                "daemon '%s' runs nodes of dataflow %s, %s: they are stopped",
                (record.machine_id if record else "") or "(default)",
                df_id,
                why,
            )
            self.channel.send(ctl.StopNodes(df_id, DEFAULT_GRACE_S, ctl.StopReason.MANUAL), to=peer)

    def _node_ready(self, msg: ctl.NodeReady) -> None:
        run = self._dataflows.get(msg.dataflow_id)
        if run is None or run.finished:
            return
        run.endpoints[msg.node] = msg.endpoint
        if run.nodes.get(msg.node) in (NodeState.SPAWNING, NodeState.WAITING, NodeState.RESTARTING):
            run.nodes[msg.node] = NodeState.READY
        self._publish_peers(run)

    def _node_exited(self, msg: ctl.NodeExited) -> None:
        run = self._dataflows.get(msg.dataflow_id)
        if run is None or run.nodes.get(msg.node) in (NodeState.EXITED, NodeState.FAILED):
            return
        if run.finished:
            self._late_exit(run, msg)
            run.undelivered = undelivered(run)  # its final counters may have come after the end
            return
        dynamic = run.descriptor.node(msg.node).kind is NodeKind.DYNAMIC
        run.nodes[msg.node] = NodeState.FAILED if msg.failed else (NodeState.WAITING if dynamic else NodeState.EXITED)
        run.endpoints.pop(msg.node, None)
        if dynamic and not msg.failed:
            # A dynamic node may leave and join again: its subscribers keep their inputs open.
            log.info("dataflow %s: dynamic node %s left", run.name, msg.node)
            return
        if msg.failed:
            failure = ctl.FailureRecord(msg.node, msg.exit_code, msg.signal, msg.stderr_tail, msg.reason, msg.machine)
            run.failures.append(failure)
            summary = NodeFailure(msg.node, msg.exit_code, msg.signal, "", msg.reason, msg.machine).describe()
            at, _, _ = run.add_log(msg.node, "dora", summary)  # `dora-zmq logs` says how it ended
            self._notify(run, ctl.LogLine(run.id, msg.node, summary, "dora", at))
        notice = run.exit_notices[msg.node] = exit_notice(run, msg)
        self._broadcast(run, notice)
        if run.all_ended():
            self._finish(run, Status.FAILED if run.failures else Status.FINISHED)
        else:
            self._publish_peers(run)

    def _late_exit(self, run: DataflowRun, msg: ctl.NodeExited) -> None:
        """The exit of a node left unconfirmed at the stop's deadline, reported after all: the
        record says how it ended (its counters came with it); the dataflow stays ended."""
        if run.nodes.get(msg.node) != NodeState.UNCONFIRMED:
            return
        run.nodes[msg.node] = NodeState.FAILED if msg.failed else NodeState.EXITED
        after = time.monotonic() - (run.deadline_passed_at or time.monotonic())
        text = late_exit_text(msg, after)
        run.failures = [replace(f, reason=f.reason + text) if f.node == msg.node else f for f in run.failures]
        log.info("dataflow %s (ended): node %s%s", run.name, msg.node, text)

    def _node_restarting(self, msg: ctl.NodeRestarting) -> None:
        """A node exited and its restart_policy starts it again: not an exit for its subscribers."""
        run = self._dataflows.get(msg.dataflow_id)
        if run is None or run.finished:
            return
        run.nodes[msg.node] = NodeState.RESTARTING
        run.restarts[msg.node] = msg.restart_count
        how = (
            f"exit code {msg.exit_code}"
            if msg.exit_code is not None
            else f"signal {msg.signal}"
            if msg.signal
            else "exit code 0"
        )
        limit = f" of {msg.limit}" if msg.limit else ""
        when = f" in {msg.delay_s:g} s" if msg.delay_s else ""
        line = (
            f"node {msg.node} exited ({how}); restarting it{when} (restart {msg.restart_count}{limit}, restart_policy)"
        )
        log.info("dataflow %s: %s", run.name, line)
        self._notify(run, ctl.LogLine(run.id, msg.node, line, "dora"))
        self._broadcast(run, ctl.UpstreamRestarted(run.id, msg.node, msg.restart_count))

    def _resolve_node(self, peer: bytes, node: str, ref: str) -> None:
        candidates = [
            run
            for run in self._dataflows.values()
            if not run.finished
            and node in run.nodes
            and run.descriptor.node(node).kind is NodeKind.DYNAMIC
            and (not ref or run.id.startswith(ref) or run.name == ref)
        ]
        if not candidates:
            self.channel.send(
                ctl.Failed(
                    f"no running dataflow has a dynamic node '{node}': declare it with `path: dynamic` "
                    "in the YAML and start the dataflow first"
                ),
                to=peer,
            )
            return
        run = candidates[-1]
        ident = run.placement.get(node)
        record = self._daemons.get(ident) if ident is not None else None
        if record is None:
            self.channel.send(ctl.Failed(f"dataflow '{run.name}' is not placed yet; try again"), to=peer)
            return
        self.channel.send(ctl.NodeDaemon(run.id, record.machine_id, list(record.node_addresses)), to=peer)

    def _node_logs(self, msg: ctl.NodeLogs) -> None:
        run = self._dataflows.get(msg.dataflow_id)
        if run is None:
            return
        for line in msg.lines:
            at, _, _ = run.add_log(msg.node, msg.stream, line)
            self._notify(run, ctl.LogLine(run.id, msg.node, line, msg.stream, at))

    def _daemon_lost(self, ident: bytes, why: str, expected: bool = False) -> None:
        record = self._daemons.pop(ident, None)
        if record is None:
            return
        log.log(
            logging.INFO if expected else logging.WARNING, "daemon '%s' lost: %s", record.machine_id or "(default)", why
        )
        for run in list(self._dataflows.values()):
            if run.finished:
                continue
            lost_nodes = [
                node
                for node, placed in run.placement.items()
                if placed == ident and run.nodes.get(node) not in (NodeState.EXITED, NodeState.FAILED)
            ]
            for node in lost_nodes:
                reason = f"daemon on machine '{record.machine_id or '(default)'}' lost ({why})"
                self._node_exited(ctl.NodeExited(run.id, node, None, None, True, reason, "", record.machine_id))
            if lost_nodes and not expected and not run.finished:
                # Part of the graph is gone for good: stop the rest instead of leaving it hanging.
                self._stop_run(run, DEFAULT_GRACE_S)

    # ---- helpers ---------------------------------------------------------------------------

    def _tick(self) -> None:
        self._bundles.tick()
        now = time.monotonic()
        for ident, record in list(self._daemons.items()):
            self._check_daemon(ident, record, now)
        for run in list(self._dataflows.values()):
            if run.status == Status.PENDING:
                self._try_place(run)
            elif run.status == Status.STOPPING and run.stop_deadline is not None and now > run.stop_deadline:
                self._end_unconfirmed(run, now)
            elif run.status == Status.RUNNING and not run.peers_sent:
                if not run.start_warned:
                    self._warn_slow_start(run)
                self._check_spawns(run, now)

    def _check_spawns(self, run: DataflowRun, now: float) -> None:
        """The start-up deadline: nodes whose daemon never confirmed them fail the dataflow."""
        nodes = spawn_unconfirmed(run)
        if not nodes:
            return
        for node in nodes:
            machine = run.machines.get(node, "")
            why = unconfirmed_reason(self._daemons.get(run.placement.get(node, b"")), now)
            reason = f"not confirmed started by its daemon within {ctl.START_CONFIRM_S:g} s: {why}"
            self._node_exited(ctl.NodeExited(run.id, node, None, None, True, reason, "", machine))
        if not run.finished:
            self._stop_run(run, DEFAULT_GRACE_S)

    def _end_unconfirmed(self, run: DataflowRun, now: float) -> None:
        """The stop's deadline passed: end the dataflow, naming each node whose exit its daemon
        has not confirmed, its machine and why."""
        probed: dict[bytes, bool] = {}
        lines = []
        for node in stop_unconfirmed(run):
            ident = run.placement.get(node, b"")
            record = self._daemons.get(ident)
            if record is not None and ident not in probed:  # ROUTER_MANDATORY: fails on a closed connection
                probed[ident] = self.channel.send(ctl.Probe(), to=ident)
            machine = run.machines.get(node, "")
            why = unconfirmed_reason(record, now, probed.get(ident))
            reason = f"exit not confirmed within the stop's deadline: {why}"
            run.nodes[node] = NodeState.UNCONFIRMED
            run.failures.append(ctl.FailureRecord(node, reason=reason, machine=machine))
            lines.append(f"node '{node}' on {_machine_name(machine)}: {why}")
            at, _, _ = run.add_log(node, "dora", f"node '{node}': {reason}")
            self._notify(run, ctl.LogLine(run.id, node, f"node '{node}': {reason}", "dora", at))
        run.deadline_passed_at = now
        if not lines:  # every exit came in the same pass
            self._finish(run, Status.FAILED if run.failures else Status.FINISHED)
            return
        run.pending_error = (
            f"stop not confirmed within its deadline ({ctl.stop_bound(run.stop_grace):g} s: grace {run.stop_grace:g} s "
            f"+ {ctl.KILL_AFTER_TERM_S:g} s to SIGKILL + {ctl.STOP_MARGIN_S:g} s margin); exit unconfirmed of "
            + "; ".join(lines)
        )
        log.warning("dataflow %s: %s", run.name, run.pending_error)
        self._finish(run, Status.FAILED)

    def _check_daemon(self, ident: bytes, record: DaemonRecord, now: float) -> None:
        """Apply the liveness rule (._liveness) to one daemon."""
        verdict = judge(now - record.last_seen, ident in self._in_process)
        if verdict.probe and now - record.probed_at >= PROBE_EVERY_S:
            record.probed_at = now
            # ROUTER_MANDATORY: the send fails if the daemon's connection is gone.
            verdict = judge(now - record.last_seen, False, connected=self.channel.send(ctl.Probe(), to=ident))
        name = record.machine_id or "(default)"
        if verdict.lost:
            self._daemon_lost(ident, verdict.lost)
        elif verdict.suspect and not record.suspect:
            record.suspect = True
            log.warning(
                "daemon '%s' silent for %.1f s but its connection is open: busy, not lost (yet)",
                name,
                now - record.last_seen,
            )
        elif not verdict.suspect and record.suspect:
            record.suspect = False
            log.info("daemon '%s' is heard from again", name)

    def _warn_slow_start(self, run: DataflowRun) -> None:
        # A node starts once its upstream nodes have called Node() or exited. A program that
        # never calls Node() (a plain script, a tool) holds the nodes that read its outputs
        # until it exits, silently blocked in Node(): name it.
        if time.time() - max(run.started_at, run.folder_fetched_at) < START_WARN_S:
            return
        run.start_warned = True
        waiting = [n for n in run.static_nodes() if run.nodes.get(n) == NodeState.SPAWNING]
        for node in waiting:
            text = (
                f"dataflow {run.name}: node '{node}' has not called Node() {START_WARN_S:g} s after it started; "
                "nodes that read its outputs wait for it"
                " (a program that is not a dora_zmq node holds them until it exits)"
            )
            log.info("%s", text)  # attached clients get it as a line of that node
            at, _, _ = run.add_log(node, "dora", text)
            self._notify(run, ctl.LogLine(run.id, node, text, "dora", at))

    def _open_span(self, run: DataflowRun, phase: str, name: str, **attrs: Any) -> Any:
        if (run.id, phase) in self._spans:
            return self._spans[(run.id, phase)]
        span = self._tracer.start(name, dataflow_id=run.id, dataflow_name=run.name, **attrs)
        if span is not None:
            self._spans[(run.id, phase)] = span
        return span

    def _close_span(self, run: DataflowRun, phase: str, **attrs: Any) -> None:
        span = self._spans.pop((run.id, phase), None)
        if span is not None:
            for key, value in attrs.items():
                span.set_attribute(f"dora.{key}", value)
            span.end()

    def _finish(self, run: DataflowRun, status: str) -> None:
        self._close_span(run, "start", status=status)
        self._close_span(run, "stop", status=status)
        run.status = status
        run.ended_at = time.time()
        run.undelivered = undelivered(run)
        result = run.result()
        log.info("dataflow %s %s", run.name, status)
        for watcher in self._watchers.pop(run.id, []):
            self.channel.send(result, to=watcher.peer)
        for waiter in self._spawn_waiters.pop(run.id, []):  # it ended before it was placed
            why = run.pending_error or ("stopped before its nodes were placed" if run.stopped else run.status)
            self.channel.send(ctl.Failed(f"dataflow '{run.name}' failed: {why}"), to=waiter)

    def _notify(self, run: DataflowRun, event: ctl.LogLine) -> None:
        watchers = self._watchers.get(run.id)
        if not watchers:
            return
        # A watcher whose CLI is gone (the send fails) is forgotten.
        self._watchers[run.id] = [w for w in watchers if not w.wants(event.node) or self.channel.send(event, to=w.peer)]

    def _broadcast(self, run: DataflowRun, msg: Any) -> None:
        for ident in run.daemons:
            if ident in self._daemons:
                self.channel.send(msg, to=ident)

    def _find(self, ref: str) -> DataflowRun | None:
        if ref in self._dataflows:
            return self._dataflows[ref]
        matches = [d for d in self._dataflows.values() if d.name == ref or d.id.startswith(ref)]
        running = [d for d in matches if not d.finished]
        found = running or matches
        return found[-1] if found else None

    def _unknown(self, ref: str) -> str:
        known = ", ".join(f"{d.name} ({d.status})" for d in self._dataflows.values()) or "none"
        return f"no dataflow '{ref}' (known: {known}); see `dora-zmq list`"

    def _prune_finished(self) -> None:
        finished = [d for d in self._dataflows.values() if d.finished]
        for run in finished[:-_FINISHED_KEPT]:
            self._dataflows.pop(run.id, None)

    def _destroy(self, peer: bytes) -> None:
        for run in self._dataflows.values():
            if not run.finished:
                run.stopped = True
        for ident in self._daemons:
            self.channel.send(ctl.ShutdownDaemon(DEFAULT_GRACE_S), to=ident)
        self.channel.send(ctl.Ok("destroying: daemons are stopping their nodes"), to=peer)
        self._exit_at = time.monotonic() + DEFAULT_GRACE_S + 8.0


def _placed(run: DataflowRun) -> str:
    machines = sorted({m or "(default)" for m in run.machines.values()})
    nodes = len(run.placement)
    return f"{nodes} node{'s' if nodes != 1 else ''} on machine{'s' if len(machines) > 1 else ''} {', '.join(machines)}"


def _machine_name(machine: str) -> str:
    return f"machine '{machine}'" if machine else "the default machine"
