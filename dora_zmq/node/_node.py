"""``Node``: the custom-node API of dora-rs, plus ``inputs()``, a tuple loop of our own."""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import sys
import threading
import time
import traceback
import weakref
from typing import Any, AsyncIterator, Iterator, Mapping

import pyarrow as pa


from .. import _control as ctl
from .._errors import ControlError, NodeConfigError, OutputError
from .._transport import Channel, Poller, Publisher, Subscriber, ipc_endpoint, release_context
from .._wire import (
    MessageKind,
    encode_control_frames,
    encode_data_frames,
    encode_topic,
    marker_topic,
    parse_marker,
    to_arrow,
)
from ..descriptor import Dataflow, NodeSpec, OutputRef, TimerSpec, parse_dataflow
from ..tracing import NodeTracing, setup_tracing
from ._async import AsyncEvents
from ._config import DataflowId, NodeEnvironment, relay_addresses
from ._dynamic import advertised, local_address_towards, resolve_dynamic
from ._events import Event, EventQueue, timeout_event
from ._extras import DoraExtras
from ._readers import ReaderTokens
from ._receiver import Receiver, Route, TimerInput
from ._samples import OutputSample
from ._shm_sender import ShmSender
from ._stdout import StdoutCapture

__all__ = ["Node"]

log = logging.getLogger(__name__)

_REGISTER_TIMEOUT_S = float(os.environ.get("DORA_ZMQ_REGISTER_TIMEOUT", "30"))
_START_TIMEOUT_S = float(os.environ.get("DORA_ZMQ_START_TIMEOUT", "60"))
_crash: list[str] = []


def _record_crash(exc_type: Any, exc: Any, tb: Any) -> None:
    _crash.append("".join(traceback.format_exception_only(exc_type, exc)).strip())
    _previous_hook(exc_type, exc, tb)


_previous_hook = sys.excepthook


class Node(DoraExtras):
    """A dora node: receive events from the dataflow, send outputs into it.

    ``Node()`` reads the environment its daemon set; ``Node("id")`` joins as a dynamic node.
    It returns once every downstream node is subscribed, so no first message is lost.

    Args:
        node_id: the id of a ``path: dynamic`` node started by hand; None when spawned.
        coordinator: for a dynamic node, the coordinator's address (default:
            ``$DORA_ZMQ_COORDINATOR``, else ``tcp://127.0.0.1:53290``).

    Raises:
        NodeConfigError: the script was not started by a daemon (with how to run it).
    """

    def __init__(self, node_id: str | None = None, *, coordinator: str | None = None) -> None:
        _install_config_error_hook()
        env = NodeEnvironment.from_env(node_id, coordinator)
        if not env.daemon:
            env = resolve_dynamic(env, _REGISTER_TIMEOUT_S)
        self._id = env.node_id
        self._closed = False
        self._lock = threading.Lock()
        self._ctrl = Channel.connect(env.daemon)
        # The daemon takes this node's reports only from its own sockets: this one, and the one
        # close() and request_dataflow_stop() send on from the user's thread, announced here.
        self._tx_identity = f"node-tx/{secrets.token_hex(16)}"
        setup = self._register(env)
        self._dataflow_id = DataflowId(setup.dataflow_id)
        self._restart_count = setup.restart_count
        self._dynamic = not env.spawned
        # A node on another host than its daemon (an edge device) cannot use the daemon's ipc
        # folder: it publishes on tcp only, under a machine name of its own.
        self._remote = env.daemon.startswith("tcp://") and not env.spawned
        relayed = relay_addresses() is not None
        # Its own machine name: peers must reach it over tcp (directly, or via the relay).
        self._machine = f"{setup.machine}/{self._id}" if self._remote or relayed else setup.machine
        self._descriptor: Dataflow = parse_dataflow(setup.yaml, working_dir=_path(setup.working_dir), check_paths=False)
        self._spec: NodeSpec = self._descriptor.node(self._id)
        self._topics = {out: encode_topic(self._id, out) for out in self._spec.outputs}
        self._seqs = {out: 1 for out in self._spec.outputs}
        self._closed_outputs: set[str] = set()
        self._queue = EventQueue({i.id: i.queue_size for i in self._spec.inputs.values()})
        self._readers = ReaderTokens(self._id, setup.reader_token, setup.reader_tokens, self._reader_topics())
        self._relay = relay_addresses()
        if self._relay is not None:
            self._pub = Publisher("", relay=self._relay[0])
        elif self._remote:
            self._pub = Publisher("", f"tcp://{os.environ.get(ctl.ENV_BIND, '0.0.0.0')}:*", admit=self._readers.admits)
        else:
            self._pub = Publisher(ipc_endpoint(setup.ipc_dir, self._id), setup.tcp_bind, admit=self._readers.admits)
        self._sub = Subscriber()
        self._shm = ShmSender(self._dataflow_id, self._id, self._machine, self._descriptor, self._spec.outputs, self._readers)
        self._routes = self._build_routes()
        self._peer_lock = threading.Lock()
        self._deferred: list[Any] = []  # control messages that arrived during start-up
        self._start(setup)
        self._ctrl_tx = Channel.connect(env.daemon, identity=self._tx_identity)
        self._receiver = Receiver(
            self._id, self._sub, self._ctrl, self._routes, self._timers(), self._queue, self._connect_peers, env.spawned,
            self._deferred, self._dataflow_id, self._sent_counts, self._readers.label,
        )
        self._receiver.start()
        self._async = AsyncEvents(self._id, self.next)
        self._stdout: StdoutCapture | None = None
        if self._spec.send_stdout_as:
            output = self._spec.send_stdout_as
            self._stdout = StdoutCapture(self._id, lambda line: self.send_output(output, pa.array([line])))
        provider = setup_tracing(self._id, {"dora.dataflow_id": self._dataflow_id})
        self._tracing = NodeTracing(provider, self._id, self._dataflow_id, self._machine) if provider else None
        _install_exit_hooks(self)

    # ---- public API -------------------------------------------------------------------

    @property
    def id(self) -> str:
        """This node's id."""
        return self._id

    @property
    def dataflow_id(self) -> "DataflowId":
        """The id of the running dataflow: ``node.dataflow_id()`` as in dora (a method there).

        The value is a ``str`` that can also be called, so the older attribute form
        ``node.dataflow_id`` keeps working.
        """
        return self._dataflow_id

    def is_restart(self) -> bool:
        """True if this process replaces one of this node that exited (``restart_policy``)."""
        return self._restart_count > 0

    def restart_count(self) -> int:
        """How many times this node was restarted: 0 on the first run, 1 after one restart..."""
        return self._restart_count

    @property
    def machine(self) -> str:
        """The machine (daemon) this node runs on."""
        return self._machine

    def next(self, timeout: float | None = None) -> Event | None:
        """The next event; None once the stream has ended.

        With ``timeout`` (seconds) and no event by then: an ERROR event whose ``error`` starts
        with ``Timeout`` (as dora-rs 1.1), so None keeps meaning "the stream ended".
        """
        receiver = self._receiver
        receiver.nexts += 1
        event = self._queue.get(0)
        if event is None and not self._queue.ended:
            event = receiver.receive_until_event(timeout)
            if event is None and timeout is not None and not self._queue.ended:
                return timeout_event(timeout)
        elif not receiver.nexts & 31:
            receiver.top_up()  # a node busy with queued events still drains the socket
        return self._observe(event)

    def _observe(self, event: Event | None) -> Event | None:
        """An event handed to the application (its consumer span, when tracing)."""
        if self._tracing is not None and event is not None:
            self._tracing.on_event(event)
        return event

    def __iter__(self) -> Iterator[Event]:
        while (event := self.next()) is not None:
            yield event

    def __next__(self) -> Event:
        event = self.next()
        if event is None:
            raise StopIteration
        return event

    async def recv_async(self, timeout: float | None = None) -> Event | None:
        """``await node.recv_async()``: the next event without blocking the event loop.

        Returns None when the stream has ended; after ``timeout`` seconds without an event, an
        ERROR event (as ``next``). A cancelled call loses no event: the next call returns it.
        """
        event: Event | None = await self._async.recv(timeout)
        return event

    async def __aiter__(self) -> AsyncIterator[Event]:
        """``async for event in node:`` until the stream ends."""
        while (event := await self.recv_async()) is not None:
            yield event

    def inputs(self) -> Iterator[tuple[str, bytes, dict[str, Any]]]:
        """A loop of our own, for code written against the older dora tuple form.

        ``for input_id, value, metadata in node.inputs():``

        Yields only INPUT events, with ``value`` as ``bytes``; ends when the stream ends.
        """
        for event in self:
            if event["type"] == "INPUT":
                yield event["id"], event["data"], event["metadata"]

    def send_output(self, output_id: str, data: Any, metadata: Mapping[str, Any] | None = None) -> None:
        """Send ``data`` on output ``output_id``.

        ``data``: a ``pyarrow.Array``, bytes, a NumPy array, or an :class:`OutputSample` from
        :meth:`allocate_output` (or an array viewing one: sent without a copy when it can be).

        Raises:
            OutputError: ``output_id`` is not declared under this node's ``outputs:``.
            TypeError: ``data`` or a metadata value has an unsupported type.
        """
        topic = self._topics.get(output_id)
        if topic is None:
            if output_id in self._closed_outputs:
                raise OutputError(f"node '{self._id}': output '{output_id}' was closed (close_output); cannot send on it")
            declared = ", ".join(self._spec.outputs) or "none"
            raise OutputError(
                f"node '{self._id}' has no output '{output_id}' (declared: {declared}); "
                f"add it under the node's `outputs:` in the dataflow YAML"
            )
        if self._closed:
            raise OutputError(f"node '{self._id}' is closed; cannot send '{output_id}'")
        if type(data) is OutputSample:
            if data.sent:
                raise OutputError(f"node '{self._id}': this OutputSample was sent already; allocate a new one per message")
            data.sent = True
            data = data.as_array()
        value = to_arrow(data)
        if self._tracing is not None:
            metadata = self._tracing.on_send(output_id, metadata, value.get_total_buffer_size())
        with self._lock:
            if self._pub.manual:  # subscriptions take effect once read (see Publisher)
                self._shm.drain(self._pub)
            seq = self._seqs[output_id]
            self._seqs[output_id] = seq + 1
            frames = self._shm.frames(self._pub, output_id, topic, seq, value, metadata) if self._shm.threshold else None
            self._pub.send(frames or encode_data_frames(topic, seq, value, metadata))
            if frames is not None:
                self._shm.after_send(self._pub)

    def allocate_output(self, output_id: str, nbytes: int) -> OutputSample:
        """Memory for one message on ``output_id``, to fill in place and pass to ``send_output``.

        When every receiver of the output runs on this machine and ``nbytes`` reaches the
        shared-memory threshold, the sample lies in shared memory and sending it copies
        nothing (receivers read it where it is); otherwise it is ordinary memory, sent as a
        copy. Either way the code is the same::

            sample = node.allocate_output("image", h * w * 3)
            camera.read_into(sample.numpy(shape=(h, w, 3)))
            node.send_output("image", sample, {"width": w, "height": h})

        Raises:
            OutputError: ``output_id`` is not declared under this node's ``outputs:``.
            ValueError: ``nbytes`` is negative.
        """
        if output_id not in self._spec.outputs:
            declared = ", ".join(self._spec.outputs) or "none"
            raise OutputError(f"node '{self._id}' has no output '{output_id}' (declared: {declared})")
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, got {nbytes}")
        with self._lock:
            return self._shm.allocate(self._pub, output_id, nbytes)

    def close_output(self, output_id: str) -> None:
        """Send end-of-stream on one output: its subscribers get INPUT_CLOSED (idempotent).

        Raises:
            OutputError: ``output_id`` is not declared.
        """
        if output_id not in self._spec.outputs:
            raise OutputError(f"node '{self._id}' has no output '{output_id}'")
        with self._lock:
            topic = self._topics.pop(output_id, None)
            self._closed_outputs.add(output_id)
            if topic is not None and not self._closed:
                self._pub.send(encode_control_frames(topic, MessageKind.EOS, self._seqs[output_id]))

    @property
    def descriptor(self) -> Dataflow:
        """The parsed dataflow (typed records; ``dataflow_descriptor()`` gives the raw dict)."""
        return self._descriptor

    def request_dataflow_stop(self, reason: str = "") -> None:
        """Ask the coordinator to stop the whole dataflow (what an operator's STOP_ALL does)."""
        self._ctrl_tx.send(ctl.RequestStop(self._dataflow_id, self._id, reason))

    def dataflow_descriptor(self) -> dict[str, Any]:
        """The whole dataflow YAML, parsed (a dict, as dora returns)."""
        return dict(self._descriptor.raw)

    def node_config(self) -> dict[str, Any]:
        """This node's entry of the dataflow YAML, with ``inputs`` and ``outputs`` always there
        (as dora's, which holds only those two)."""
        for entry in self._descriptor.raw.get("nodes", []):
            if isinstance(entry, dict) and entry.get("id") == self._id:
                return {"inputs": {}, "outputs": [], **entry}
        return {"inputs": {}, "outputs": []}

    @property
    def dropped(self) -> dict[str, int]:
        """Messages dropped per input because its ``queue_size`` was full."""
        return dict(self._queue.drops)

    @property
    def finished(self) -> bool:
        """True once the event stream has ended (``next()`` only returns None from now on)."""
        return self._queue.ended

    @property
    def lost(self) -> dict[str, int]:
        """Messages lost in transit per input (e.g. while a network link was down)."""
        return self._receiver.lost()

    def _sent_counts(self) -> dict[str, int]:
        """Messages sent per output (sequence numbers start at 1); any thread may call it."""
        return {out: seq - 1 for out, seq in list(self._seqs.items())}

    def close(self, error: str | None = None) -> None:
        """Send end-of-stream on every output and leave the dataflow (idempotent; also at exit).

        Args:
            error: set when the node is failing: downstream nodes get NODE_FAILED with it.
                An uncaught exception in the main thread is recorded and used automatically.
        """
        if self._closed:
            return
        if self._stdout is not None:  # its last lines go out before the end-of-stream
            self._stdout.stop()
            self._stdout = None
        self._closed = True
        error = error or (_crash[-1] if _crash else "")
        # A dynamic node may come back: leaving cleanly does not end its outputs downstream.
        # A node with a restart_policy may be started again by its daemon, which alone
        # knows: its subscribers learn the end from the daemon's report, not in-band.
        restartable = self._spec.restart.policy != "never"
        topics = {} if (self._dynamic and not error) or restartable else self._topics
        # A clean end while the dataflow is being stopped says so (see EventQueue.stopped_by).
        meta = {"error": error} if error else ({"stop": self._queue.stopped_by} if self._queue.stopped_by else None)
        with self._lock:
            for out, topic in topics.items():
                kind = MessageKind.FAILED if error else MessageKind.EOS
                self._pub.send(encode_control_frames(topic, kind, self._seqs[out], meta))
        self._ctrl_tx.send(ctl.NodeStats(
            self._dataflow_id, self._id, self.dropped, self.lost, dict(self._queue.received), self._sent_counts(), self._queue.depths(),
        ))
        inputs_closed = bool(self._spec.inputs) and not self._queue.open_inputs
        self._ctrl_tx.send(ctl.NodeClosing(self._dataflow_id, self._id, error, inputs_closed))
        self._receiver.close()
        self._async.close()
        self._pub.close()
        self._ctrl_tx.close(1000)
        self._shm.close()
        release_context()  # flush what is queued before the interpreter frees the buffers
        if self._tracing is not None:
            self._tracing.close()
        for input_id, n in self.dropped.items():
            if n:
                log.warning("node %s: input %s dropped %d message(s) (queue_size full)", self._id, input_id, n)

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Node {self._id!r} dataflow={self._dataflow_id!r}>"

    # ---- start-up ---------------------------------------------------------------------

    def _register(self, env: NodeEnvironment) -> ctl.NodeSetup:
        try:
            reply = self._ctrl.request(
                ctl.RegisterNode(env.dataflow_id, env.node_id, os.getpid(), ctl.PROTOCOL_VERSION, self._tx_identity, env.token),
                _REGISTER_TIMEOUT_S,
            )
        except ControlError as exc:
            self._ctrl.close()
            raise NodeConfigError(f"node '{env.node_id}': the daemon at {env.daemon} did not answer ({exc}); is it running?") from exc
        if isinstance(reply, ctl.RegisterRefused):
            self._ctrl.close()
            raise NodeConfigError(f"node '{env.node_id}': the daemon refused it: {reply.error}")
        if not isinstance(reply, ctl.NodeSetup):
            self._ctrl.close()
            raise NodeConfigError(f"node '{env.node_id}': unexpected reply from daemon: {reply!r}")
        return reply

    def _build_routes(self) -> dict[bytes, Route]:
        routes: dict[bytes, Route] = {}
        for spec in self._spec.inputs.values():
            if isinstance(spec.source, OutputRef):
                topic = encode_topic(spec.source.node, spec.source.output)
                routes.setdefault(topic, Route(spec.source.node, [], output=spec.source.output)).inputs.append(spec.id)
        return routes

    def _reader_topics(self) -> dict[str, frozenset[bytes]]:
        """Per subscriber node, the topics of this node's outputs it reads."""
        topics: dict[str, set[bytes]] = {}
        for out, topic in self._topics.items():
            for reader, _ in self._descriptor.subscribers(self._id, out):
                topics.setdefault(reader, set()).add(topic)
        return {reader: frozenset(t) for reader, t in topics.items()}

    def _timers(self) -> list[TimerInput]:
        return [TimerInput(i.id, i.source.interval_s) for i in self._spec.inputs.values() if isinstance(i.source, TimerSpec)]

    def _start(self, setup: ctl.NodeSetup) -> None:
        """Bind, announce, learn the peers, subscribe, and wait for our subscribers."""
        advertise = setup.tcp_advertise
        if self._remote:
            advertise = os.environ.get(ctl.ENV_ADVERTISE) or local_address_towards(self._ctrl.address)
        endpoint = ctl.NodeEndpoint(self._machine, self._pub.ipc, advertised(self._pub.tcp, advertise))
        if self._relay is not None:
            endpoint = ctl.NodeEndpoint(self._machine, "", self._relay[1])
        self._ctrl.send(ctl.NodeBound(self._dataflow_id, self._id, endpoint))
        if setup.stopping:
            self._queue.stop()
            return
        markers: set[str] = set()
        exited: set[str] = set()
        peers = self._await_peers(markers, exited)
        if peers is None:
            return
        self._connect_peers(peers, initial=True)
        for topic in self._routes:
            self._sub.subscribe(topic)
        self._sub.subscribe(marker_topic(self._readers.label))
        self._await_subscribers(markers, exited | set(peers.exited), set(peers.endpoints))

    def _await_peers(self, markers: set[str], exited: set[str]) -> ctl.Peers | None:
        """Wait until every upstream node (dynamic ones aside) has bound its publisher or ended."""
        upstream = {
            n for n in self._descriptor.upstream_nodes(self._id) if self._descriptor.node(n).kind.value != "dynamic"
        }
        poller = Poller([self._ctrl, self._pub])
        latest: ctl.Peers | None = None
        while True:
            for member in poller.wait(1000):
                if member is self._pub:
                    self._collect_markers(markers)
                    continue
                got = self._ctrl.recv_nowait()
                msg = got[1] if got else None
                if isinstance(msg, ctl.Peers):
                    latest = msg
                elif isinstance(msg, ctl.StopNode):
                    self._queue.stop(msg.reason)
                    return None
                elif msg is not None:
                    if isinstance(msg, ctl.UpstreamExited):
                        exited.add(msg.node)
                    self._deferred.append(msg)
                if latest is not None and upstream <= set(latest.endpoints) | set(latest.exited) | exited:
                    return latest

    def _await_subscribers(self, markers: set[str], exited: set[str], known: set[str]) -> None:
        """Wait until every subscriber is attached (its marker came) and its endpoint is known.

        The endpoint says which machine it runs on: without it the first large message would
        not know that shared memory can reach that subscriber.
        """
        expected = {
            n for n in self._descriptor.downstream_nodes(self._id) if self._descriptor.node(n).kind.value != "dynamic"
        }
        poller = Poller([self._ctrl, self._pub])
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not (expected <= markers | exited and expected <= known | exited):
            if time.monotonic() > deadline:
                missing = sorted(expected - (markers & known) - exited)
                log.warning("node %s: subscribers %s not attached after %.0f s; starting anyway", self._id, missing, _START_TIMEOUT_S)
                return
            for member in poller.wait(200):
                if member is self._pub:
                    self._collect_markers(markers)
                elif (got := self._ctrl.recv_nowait()) is not None:
                    msg = got[1]
                    if isinstance(msg, ctl.UpstreamExited):
                        exited.add(msg.node)
                        self._deferred.append(msg)
                    elif isinstance(msg, ctl.StopNode):
                        self._queue.stop(msg.reason)
                        return
                    else:
                        if isinstance(msg, ctl.Peers):
                            known |= set(msg.endpoints)
                            exited |= set(msg.exited)
                            self._shm.update_peers(msg)
                        self._deferred.append(msg)

    def _collect_markers(self, markers: set[str]) -> None:
        for sub in self._pub.read_subscriptions():
            parsed = parse_marker(sub)
            if parsed is not None and parsed[0] and (reader := self._readers.reader_of(parsed[1], "a start marker")) is not None:
                markers.add(reader)

    def _connect_peers(self, peers: ctl.Peers, initial: bool = False) -> None:
        self._shm.update_peers(peers)
        with self._peer_lock:
            for route in self._routes.values():
                ep = peers.endpoints.get(route.node)
                if ep is not None:
                    try:
                        self._sub.connect(ep.for_peer(self._machine))
                    except ControlError as exc:  # a forged or broken peer list costs that entry only
                        log.warning("node %s: ignoring the endpoint of upstream node %s: %s", self._id, route.node, exc)
            # An UpstreamExited for the node was received already (the daemon replays them):
            # the receiver closes those inputs with the right NODE_FAILED-or-not; closing
            # them here would call a clean exit (a shell script that only prints) a failure.
            if not initial:
                return  # later exits arrive as UpstreamExited, which drains data first
            announced = {m.node for m in self._deferred if isinstance(m, ctl.UpstreamExited)}
            for node in peers.exited:
                if node not in peers.endpoints and node not in announced:
                    inputs = [i for route in self._routes.values() if route.node == node for i in route.inputs]
                    self._queue.close_inputs(inputs, failed="node exited before the dataflow started", source=node)


def _path(p: str) -> Any:
    from pathlib import Path

    return Path(p) if p else None


def _config_error_hook(exc_type: Any, exc: Any, tb: Any) -> None:
    """An uncaught NodeConfigError (a script run by hand) shows its message only, no stack:
    the message says how to run the node, a traceback into dora_zmq would only hide that."""
    if isinstance(exc, NodeConfigError):
        exc.__cause__ = None
        exc.__suppress_context__ = True
        tb = None
        exc.__traceback__ = None  # the default hook reads it from the exception too
    _hook_before_config(exc_type, exc, tb)


_hook_before_config = sys.excepthook


def _install_config_error_hook() -> None:
    global _hook_before_config
    if sys.excepthook is not _config_error_hook and sys.excepthook is not _record_crash:
        _hook_before_config = sys.excepthook
        sys.excepthook = _config_error_hook


_live_nodes: "weakref.WeakSet[Node]" = weakref.WeakSet()


def _install_exit_hooks(node: Node) -> None:
    global _previous_hook
    if not _live_nodes:
        atexit.register(_close_all)
        if sys.excepthook is not _record_crash:
            _previous_hook = sys.excepthook
            sys.excepthook = _record_crash
    _live_nodes.add(node)


def _close_all() -> None:
    for node in list(_live_nodes):
        try:
            node.close()
        except Exception:  # noqa: BLE001 - at exit, report and go on closing the others
            log.exception("error while closing node %s at exit", node.id)
