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
from pathlib import Path
from typing import Any

from .. import _control as ctl
from .._errors import DescriptorError, NodeFailure
from .._transport import Channel, Poller
from .._version import __version__
from ..descriptor import NodeKind, parse_dataflow
from ..tracing import LifecycleTracer
from ._state import DaemonRecord, DataflowRun, NodeState, Status

__all__ = ["Coordinator", "DEFAULT_PORT", "DEFAULT_ADDRESS"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 53290
DEFAULT_ADDRESS = f"tcp://127.0.0.1:{DEFAULT_PORT}"
# Daemons beat every 0.5 s: 6 missed beats and the machine is considered lost.
DAEMON_TIMEOUT_S = float(os.environ.get("DORA_ZMQ_DAEMON_TIMEOUT", "3"))
MACHINE_WAIT_S = float(os.environ.get("DORA_ZMQ_MACHINE_WAIT", "10"))
# After this long without every node started, say which ones the others are waiting for.
START_WARN_S = float(os.environ.get("DORA_ZMQ_START_WARN", "5"))
DEFAULT_GRACE_S = 10.0
_FINISHED_KEPT = 50


class Coordinator:
    """Serves the control plane on ``bind`` until :meth:`request_shutdown` or ``Destroy``."""

    def __init__(self, bind: str = DEFAULT_ADDRESS) -> None:
        self.channel = Channel.serve(bind)
        self._daemons: dict[bytes, DaemonRecord] = {}
        self._dataflows: dict[str, DataflowRun] = {}
        self._watchers: dict[str, list[tuple[bytes, bool, str | None]]] = {}
        self._stop = threading.Event()
        self._exit_at: float | None = None
        self._tracer = LifecycleTracer("dora-coordinator", "coordinator")
        self._spans: dict[tuple[str, str], Any] = {}  # (dataflow id, phase) -> open span

    @property
    def address(self) -> str:
        """The bound control address (with the real port when bound to port 0)."""
        return self.channel.address

    def request_shutdown(self) -> None:
        """Thread-safe: leave ``serve_forever`` soon."""
        self._stop.set()

    def serve_forever(self) -> None:
        """Run the event loop until shut down."""
        poller = Poller([self.channel])
        log.info("coordinator listening on %s", self.address)
        try:
            while not self._stop.is_set():
                if poller.wait(100):
                    while (got := self.channel.recv_nowait()) is not None:
                        self._dispatch_safely(*got)
                self._tick()
                if self._exit_at is not None and (not self._daemons or time.monotonic() > self._exit_at):
                    break
        finally:
            for span in self._spans.values():
                span.end()
            self._tracer.close()
            self.channel.close()
            log.info("coordinator stopped")

    def _dispatch_safely(self, peer: bytes, msg: Any) -> None:
        try:
            self._dispatch(peer, msg)
        except Exception as exc:  # noqa: BLE001 - see below
            # The codec checks the shape of a message, not its sense (a node id nobody knows, a
            # field of the wrong type): such a message is dropped, the control plane goes on.
            log.warning("coordinator dropped %s from %r: %s: %s", type(msg).__name__, peer, type(exc).__name__, exc)
            log.debug("handler error", exc_info=True)

    def _dispatch(self, peer: bytes, msg: Any) -> None:
        if peer in self._daemons:
            self._daemons[peer].last_seen = time.monotonic()
        match msg:
            # CLI requests
            case ctl.StartDataflow():
                self._start(peer, msg)
            case ctl.StopDataflow(dataflow=ref, grace_s=grace):
                self._stop_request(peer, ref, grace)
            case ctl.ListDataflows():
                self.channel.send(ctl.DataflowList([d.info() for d in self._dataflows.values()]), to=peer)
            case ctl.Attach(dataflow=ref, logs=logs):
                self._attach(peer, ref, logs, None, 0)
            case ctl.FetchLogs(dataflow=ref, node=node, follow=follow, tail=tail):
                self._attach(peer, ref, follow, node, tail)
            case ctl.ResolveNode(node=node, dataflow=ref):
                self._resolve_node(peer, node, ref)
            case ctl.Ping():
                self.channel.send(ctl.Pong(__version__, sorted(d.machine_id for d in self._daemons.values())), to=peer)
            case ctl.Destroy():
                self._destroy(peer)
            # daemon reports
            case ctl.RegisterDaemon():
                self._register_daemon(peer, msg)
            case ctl.DaemonHeartbeat():
                if peer not in self._daemons:  # this coordinator restarted, or declared it lost
                    self.channel.send(ctl.DaemonAccepted(register_again=True), to=peer)
            case ctl.DaemonExiting():
                self._daemon_lost(peer, "daemon exited", expected=True)
            case ctl.NodeReady():
                self._node_ready(msg)
            case ctl.NodeRestarting():
                self._node_restarting(msg)
            case ctl.NodeExited():
                self._node_exited(msg)
            case ctl.NodeLogs():
                self._node_logs(msg)
            case ctl.NodeStats(dataflow_id=df_id, node=node, drops=drops, lost=lost):
                if (run := self._dataflows.get(df_id)) is not None:
                    run.drops.update({f"{node}/{k}": v for k, v in drops.items() if v})
                    run.lost.update({f"{node}/{k}": v for k, v in (lost or {}).items() if v})
            case ctl.RequestStop(dataflow_id=df_id, node=node, reason=reason):
                if (run := self._dataflows.get(df_id)) is not None:
                    log.info("dataflow %s: node %s asked to stop the dataflow (%s)", run.name, node, reason or "STOP_ALL")
                    self._stop_run(run, DEFAULT_GRACE_S)
            case _:
                log.warning("coordinator: unexpected message %r from %r", msg, peer)

    # ---- dataflows ----------------------------------------------------------------------

    def _start(self, peer: bytes, msg: ctl.StartDataflow) -> None:
        try:
            descriptor = parse_dataflow(msg.yaml, path=Path(msg.path) if msg.path else None, working_dir=Path(msg.working_dir), check_paths=False)
        except DescriptorError as exc:
            self.channel.send(ctl.Failed(str(exc)), to=peer)
            return
        name = msg.name or ""
        if name and any(d.name == name and not d.finished for d in self._dataflows.values()):
            self.channel.send(ctl.Failed(f"a dataflow named '{name}' is already running; stop it or pick another --name"), to=peer)
            return
        df_id = str(uuid.uuid4())
        run = DataflowRun(df_id, name or df_id[:8], descriptor, msg.yaml, msg.working_dir, msg.local)
        run.nodes = {n.id: NodeState.WAITING if n.kind is NodeKind.DYNAMIC else NodeState.SPAWNING for n in descriptor.nodes}
        run.pending_deadline = time.monotonic() + MACHINE_WAIT_S
        self._dataflows[df_id] = run
        self._open_span(run, "start", f"start dataflow {run.name}", nodes=len(descriptor.nodes))
        self._prune_finished()
        self.channel.send(ctl.DataflowStarted(df_id, run.name), to=peer)
        log.info("dataflow %s (%s): %d nodes", run.name, df_id, len(descriptor.nodes))
        self._try_place(run)

    def _try_place(self, run: DataflowRun) -> None:
        """Place nodes on daemons; spawn once every machine the dataflow names has one."""
        placement, missing = self._placement(run)
        if missing:
            if time.monotonic() < run.pending_deadline:
                return
            text = "; ".join(
                f"no daemon for machine '{m or '(default)'}' (nodes: {', '.join(nodes)}): start one with "
                f"`dora-zmq daemon --machine-id {m or '<id>'} --coordinator <address>`"
                for m, nodes in sorted(missing.items())
            )
            run.pending_error = text
            run.failures.append(ctl.FailureRecord(node=",".join(sorted(n for ns in missing.values() for n in ns)), reason=text))
            self._finish(run, Status.FAILED)
            return
        run.placement = placement
        run.status = Status.RUNNING
        by_daemon: dict[bytes, list[str]] = {}
        for node, ident in placement.items():
            by_daemon.setdefault(ident, []).append(node)
        multi = len(by_daemon) > 1
        parent = self._tracer.context_of(self._spans.get((run.id, "start")))
        for ident, nodes in by_daemon.items():
            self.channel.send(ctl.SpawnNodes(run.id, run.name, run.yaml, run.working_dir, nodes, multi, parent), to=ident)
        self._publish_peers(run)

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
        run.stopped = True
        if run.status == Status.PENDING:
            self._finish(run, Status.FINISHED)
            return
        run.status = Status.STOPPING
        span = self._open_span(run, "stop", f"stop dataflow {run.name}", grace_s=grace)
        self._broadcast(run, ctl.StopNodes(run.id, grace, trace_context=self._tracer.context_of(span)))

    def _attach(self, peer: bytes, ref: str, follow: bool, node: str | None, tail: int) -> None:
        run = self._find(ref)
        if run is None:
            self.channel.send(ctl.Failed(self._unknown(ref)), to=peer)
            return
        if node is not None and node not in run.nodes:
            self.channel.send(ctl.Failed(f"dataflow '{run.name}' has no node '{node}' (nodes: {', '.join(run.nodes)})"), to=peer)
            return
        self.channel.send(ctl.Ok(run.id), to=peer)
        if node is not None:
            lines = list(run.logs.get(node, ()))
            for stream, line in lines[-tail:] if tail else lines:
                self.channel.send(ctl.LogLine(run.id, node, line, stream), to=peer)
        if run.finished or (node is not None and not follow):
            self.channel.send(run.result(), to=peer)
            return
        self._watchers.setdefault(run.id, []).append((peer, follow, node))

    # ---- daemon reports ------------------------------------------------------------------

    def _register_daemon(self, peer: bytes, msg: ctl.RegisterDaemon) -> None:
        if msg.protocol != ctl.PROTOCOL_VERSION:
            self.channel.send(ctl.DaemonAccepted(f"protocol {msg.protocol} != coordinator's {ctl.PROTOCOL_VERSION}; use the same dora_zmq version"), to=peer)
            return
        clash = [i for i, d in self._daemons.items() if d.machine_id == msg.machine_id and i != peer]
        for ident in clash:  # a restarted daemon replaces the one it was
            self._daemon_lost(ident, "replaced by a new daemon with the same machine id")
        self._daemons[peer] = DaemonRecord(peer, msg.machine_id, msg.hostname, msg.pid, list(msg.node_addresses or []))
        self.channel.send(ctl.DaemonAccepted(), to=peer)
        log.info("daemon '%s' connected (%s, pid %d)", msg.machine_id or "(default)", msg.hostname, msg.pid)

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
            self._notify(run, ctl.LogLine(run.id, msg.node, summary, "dora"))
        self._broadcast(run, ctl.UpstreamExited(run.id, msg.node, msg.failed, msg.reason if msg.failed else ""))
        if run.all_ended():
            self._finish(run, Status.FAILED if run.failures else Status.FINISHED)
        else:
            self._publish_peers(run)

    def _node_restarting(self, msg: ctl.NodeRestarting) -> None:
        """A node exited and its restart_policy starts it again: not an exit for its subscribers."""
        run = self._dataflows.get(msg.dataflow_id)
        if run is None or run.finished:
            return
        run.nodes[msg.node] = NodeState.RESTARTING
        run.restarts[msg.node] = msg.restart_count
        how = f"exit code {msg.exit_code}" if msg.exit_code is not None else f"signal {msg.signal}" if msg.signal else "exit code 0"
        limit = f" of {msg.limit}" if msg.limit else ""
        when = f" in {msg.delay_s:g} s" if msg.delay_s else ""
        line = f"node {msg.node} exited ({how}); restarting it{when} (restart {msg.restart_count}{limit}, restart_policy)"
        log.info("dataflow %s: %s", run.name, line)
        self._notify(run, ctl.LogLine(run.id, msg.node, line, "dora"))
        self._broadcast(run, ctl.UpstreamRestarted(run.id, msg.node, msg.restart_count))

    def _resolve_node(self, peer: bytes, node: str, ref: str) -> None:
        candidates = [
            run for run in self._dataflows.values()
            if not run.finished and node in run.nodes and run.descriptor.node(node).kind is NodeKind.DYNAMIC
            and (not ref or run.id.startswith(ref) or run.name == ref)
        ]
        if not candidates:
            self.channel.send(ctl.Failed(
                f"no running dataflow has a dynamic node '{node}': declare it with `path: dynamic` "
                "in the YAML and start the dataflow first"), to=peer)
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
            run.add_log(msg.node, msg.stream, line)
            self._notify(run, ctl.LogLine(run.id, msg.node, line, msg.stream))

    def _daemon_lost(self, ident: bytes, why: str, expected: bool = False) -> None:
        record = self._daemons.pop(ident, None)
        if record is None:
            return
        log.log(logging.INFO if expected else logging.WARNING, "daemon '%s' lost: %s", record.machine_id or "(default)", why)
        for run in list(self._dataflows.values()):
            if run.finished:
                continue
            lost_nodes = [
                node for node, placed in run.placement.items()
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
        now = time.monotonic()
        for ident, record in list(self._daemons.items()):
            if now - record.last_seen > DAEMON_TIMEOUT_S:
                self._daemon_lost(ident, f"no heartbeat for {DAEMON_TIMEOUT_S:g} s")
        for run in list(self._dataflows.values()):
            if run.status == Status.PENDING:
                self._try_place(run)
            elif run.status == Status.RUNNING and not run.peers_sent and not run.start_warned:
                self._warn_slow_start(run)

    def _warn_slow_start(self, run: DataflowRun) -> None:
        # A node starts once its upstream nodes have called Node() or exited. A program that
        # never calls Node() (a plain script, a tool) holds the nodes that read its outputs
        # until it exits, silently blocked in Node(): name it.
        if time.time() - run.started_at < START_WARN_S:
            return
        run.start_warned = True
        waiting = [n for n in run.static_nodes() if run.nodes.get(n) == NodeState.SPAWNING]
        for node in waiting:
            text = (
                f"dataflow {run.name}: node '{node}' has not called Node() {START_WARN_S:g} s after it started; "
                "nodes that read its outputs wait for it (a program that is not a dora_zmq node holds them until it exits)"
            )
            log.info("%s", text)  # attached clients get it as a line of that node
            self._notify(run, ctl.LogLine(run.id, node, text, "dora"))

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
        result = run.result()
        log.info("dataflow %s %s", run.name, status)
        for peer, _, _ in self._watchers.pop(run.id, []):
            self.channel.send(result, to=peer)

    def _notify(self, run: DataflowRun, event: ctl.LogLine) -> None:
        watchers = self._watchers.get(run.id)
        if not watchers:
            return
        keep = []
        for peer, logs, node in watchers:
            if (node is None and not logs) or (node is not None and node != event.node):
                keep.append((peer, logs, node))
                continue
            if self.channel.send(event, to=peer):
                keep.append((peer, logs, node))
        self._watchers[run.id] = keep

    def _broadcast(self, run: DataflowRun, msg: Any) -> None:
        for ident in run.daemons:
            if ident in self._daemons:
                self.channel.send(msg, to=ident)

    def _find(self, ref: str) -> DataflowRun | None:
        if ref in self._dataflows:
            return self._dataflows[ref]
        matches = [d for d in self._dataflows.values() if d.name == ref or d.id.startswith(ref)]
        running = [d for d in matches if not d.finished]
        return (running or matches or [None])[-1]

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
