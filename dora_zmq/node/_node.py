"""``Node``: the custom-node API of dora-rs, plus ``inputs()``, a tuple loop of our own.

Imports: ``Node()`` builds the dataflow's records from the form its daemon parsed
(``descriptor._plain``): the descriptor parser and yaml are imported only for an older daemon
(or by ``dataflow_descriptor()``, which reads the YAML as written); tracing (OpenTelemetry) only
when the environment has ``OTEL_*`` variables (see :func:`_node_tracing`).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator, Mapping

import pyarrow as pa

from .. import _control as ctl
from .._errors import ControlError, NodeConfigError, OutputError
from .._transport import STOP_LINGER_MS, Channel, Publisher, Subscriber, ipc_endpoint, release_context
from .._wire import MessageKind, encode_topic, to_arrow
from ._async import AsyncEvents
from ._config import DataflowId, NodeEnvironment, relay_addresses
from ._dynamic import announced_endpoint, machine_name, resolve_dynamic
from ._events import Event, EventQueue
from ._extras import DoraExtras
from ._hooks import install_config_error_hook, install_exit_hooks, last_crash
from ._outputs import Outputs
from ._readers import ReaderTokens
from ._receiver import ReceiverSetup, Route, TimerInput
from ._samples import OutputSample
from ._session import Session
from ._shm_sender import ShmSender
from ._start import StartBarrier
from ._stdout import StdoutCapture

if TYPE_CHECKING:
    from ..descriptor import Dataflow, NodeSpec
    from ..tracing import NodeTracing

__all__ = ["Node"]

log = logging.getLogger(__name__)

_REGISTER_TIMEOUT_S = float(os.environ.get("DORA_ZMQ_REGISTER_TIMEOUT", "30"))
_CLOSE_LINGER_MS = 1000  # how long close() waits for its last reports to the daemon to leave


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
        install_config_error_hook()
        env = NodeEnvironment.from_env(node_id, coordinator)
        if not env.daemon:
            env = resolve_dynamic(env, _REGISTER_TIMEOUT_S)
        # Threading: see _session (the model of the whole node). Fields set here and never
        # changed are anyone's to read; the mutable ones name their owner.
        self._id = env.node_id
        self._closed = False  # owner: the application thread (close)
        self._ctrl = Channel.connect(env.daemon)  # the start barrier's, then the session's
        # The daemon takes this node's reports only from its own sockets: this one, and the one
        # close() and request_dataflow_stop() send on from the user's thread, announced here.
        self._tx_identity = f"node-tx/{os.urandom(16).hex()}"
        setup = self._register(env)
        self._dataflow_id = DataflowId(setup.dataflow_id)
        self._restart_count = setup.restart_count
        self._dynamic = not env.spawned
        # A node on another host than its daemon (an edge device) cannot use the daemon's ipc
        # folder: it publishes on tcp only, under a machine name of its own.
        remote = env.daemon.startswith("tcp://") and not env.spawned
        relay = relay_addresses()
        self._machine = machine_name(setup.machine, self._id, remote, relay is not None)
        self._descriptor: Dataflow = _dataflow(setup)
        self._spec: NodeSpec = self._descriptor.node(self._id)
        # owner: the application thread (close_output); send_output reads them
        self._topics = {out: encode_topic(self._id, out) for out in self._spec.outputs}
        self._closed_outputs: set[str] = set()
        self._queue = EventQueue({i.id: i.queue_size for i in self._spec.inputs.values()})
        self._readers = ReaderTokens(self._id, setup.reader_token, setup.reader_tokens, self._reader_topics())
        if relay is not None:
            self._pub = Publisher("", relay=relay[0])
        elif remote:
            self._pub = Publisher("", f"tcp://{os.environ.get(ctl.ENV_BIND, '0.0.0.0')}:*", admit=self._readers.admits)
        else:
            self._pub = Publisher(ipc_endpoint(setup.ipc_dir, self._id), setup.tcp_bind, admit=self._readers.admits)
        self._sub = Subscriber()  # the start barrier's, then the session's baton holder's
        self._shm = ShmSender(
            self._dataflow_id, self._id, self._machine, self._descriptor, self._spec.outputs, self._readers
        )
        self._outputs = Outputs(self._topics, self._pub, self._shm)  # owns _pub and _shm from here on
        receiving = ReceiverSetup(
            self._id,
            self._build_routes(),
            self._timers(),
            dataflow_id=self._dataflow_id,
            machine=self._machine,
            reader_label=self._readers.label,
            watch_parent=env.spawned,
        )
        self._session = Session(receiving, self._sub, self._ctrl, self._queue, self._outputs)
        relay_public = relay[1] if relay is not None else None
        endpoint = announced_endpoint(
            self._machine, self._pub, setup.tcp_advertise, remote, relay_public, self._ctrl.address
        )
        barrier = StartBarrier(self._id, self._descriptor, self._ctrl, self._pub, self._readers, self._queue)
        bound = ctl.NodeBound(self._dataflow_id, self._id, endpoint)
        started = barrier.run(bound, setup.stopping, self._session.attach, self._outputs.post_peers)
        self._ctrl_tx = Channel.connect(env.daemon, identity=self._tx_identity)
        self._session.begin(started.deferred)
        self._async = AsyncEvents(self._id, self.next)
        self._stdout: StdoutCapture | None = None  # owner: the application thread
        if self._spec.send_stdout_as:
            output = self._spec.send_stdout_as
            self._stdout = StdoutCapture(self._id, lambda line: self.send_output(output, pa.array([line])))
        self._tracing = _node_tracing(self._id, self._dataflow_id, self._machine)
        install_exit_hooks(self)

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
        event = self._session.next_event(timeout)
        if self._tracing is not None and event is not None:
            self._tracing.on_event(event)
        return event

    def _observe(self, event: Event | None) -> Event | None:  # used by DoraExtras.try_recv
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
                raise OutputError(
                    f"node '{self._id}': output '{output_id}' was closed (close_output); cannot send on it"
                )
            declared = ", ".join(self._spec.outputs) or "none"
            raise OutputError(
                f"node '{self._id}' has no output '{output_id}' (declared: {declared}); "
                f"add it under the node's `outputs:` in the dataflow YAML"
            )
        if self._closed:
            raise OutputError(f"node '{self._id}' is closed; cannot send '{output_id}'")
        if type(data) is OutputSample:
            if data.sent:
                raise OutputError(
                    f"node '{self._id}': this OutputSample was sent already; allocate a new one per message"
                )
            data.sent = True
            data = data.as_array()
        value = to_arrow(data)
        if self._tracing is not None:
            metadata = self._tracing.on_send(output_id, metadata, value.get_total_buffer_size())
        self._outputs.send(output_id, topic, value, metadata)

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
        return self._outputs.allocate(output_id, nbytes)

    def close_output(self, output_id: str) -> None:
        """Send end-of-stream on one output: its subscribers get INPUT_CLOSED (idempotent).

        Raises:
            OutputError: ``output_id`` is not declared.
        """
        if output_id not in self._spec.outputs:
            raise OutputError(f"node '{self._id}' has no output '{output_id}'")
        topic = self._topics.pop(output_id, None)
        self._closed_outputs.add(output_id)
        if topic is not None and not self._closed:
            self._outputs.end({output_id: topic}, MessageKind.EOS)

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
        return self._session.lost()

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
        error = error or last_crash()
        # A dynamic node may come back: leaving cleanly does not end its outputs downstream.
        # A node with a restart_policy may be started again by its daemon, which alone
        # knows: its subscribers learn the end from the daemon's report, not in-band.
        restartable = self._spec.restart.policy != "never"
        topics = {} if (self._dynamic and not error) or restartable else self._topics
        # A clean end while the dataflow is being stopped says so (see EventQueue.stopped_by).
        meta = {"error": error} if error else ({"stop": self._queue.stopped_by} if self._queue.stopped_by else None)
        self._outputs.end(topics, MessageKind.FAILED if error else MessageKind.EOS, meta)
        received, waiting = self._queue.counts()  # final: the coordinator's accounting of a stop
        self._ctrl_tx.send(
            ctl.NodeStats(
                self._dataflow_id,
                self._id,
                self.dropped,
                self.lost,
                received,
                self._outputs.sent_counts(),
                waiting,
            )
        )
        inputs_closed = bool(self._spec.inputs) and not self._queue.open_inputs
        self._ctrl_tx.send(ctl.NodeClosing(self._dataflow_id, self._id, error, inputs_closed))
        self._session.close()
        self._async.close()
        # A node stopping with its dataflow does not wait for queues its stopping subscribers
        # will never read (their STOP ends their stream); otherwise they get what was sent.
        stopping = self._queue.stopped_by == ctl.StopReason.MANUAL
        self._outputs.close(STOP_LINGER_MS if stopping else None)
        self._ctrl_tx.close(_CLOSE_LINGER_MS)
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
                ctl.RegisterNode(
                    env.dataflow_id, env.node_id, os.getpid(), ctl.PROTOCOL_VERSION, self._tx_identity, env.token
                ),
                _REGISTER_TIMEOUT_S,
            )
        except ControlError as exc:
            self._ctrl.close()
            raise NodeConfigError(
                f"node '{env.node_id}': the daemon at {env.daemon} did not answer ({exc}); is it running?"
            ) from exc
        if isinstance(reply, ctl.RegisterRefused):
            self._ctrl.close()
            raise NodeConfigError(f"node '{env.node_id}': the daemon refused it: {reply.error}")
        if not isinstance(reply, ctl.NodeSetup):
            self._ctrl.close()
            raise NodeConfigError(f"node '{env.node_id}': unexpected reply from daemon: {reply!r}")
        return reply

    def _build_routes(self) -> dict[bytes, Route]:
        from ..descriptor import OutputRef

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
        from ..descriptor import TimerSpec

        return [
            TimerInput(i.id, i.source.interval_s) for i in self._spec.inputs.values() if isinstance(i.source, TimerSpec)
        ]


def _path(p: str) -> Path | None:
    return Path(p) if p else None


def _dataflow(setup: ctl.NodeSetup) -> Dataflow:
    """The dataflow's records: built from the daemon's parsed form, else parsed from the YAML.

    The parsed form spares the node the parser, yaml and a parse of the whole file (see
    ``descriptor._plain``); an older daemon sends none, and one the node cannot read (another
    layout) is logged and the YAML parsed instead.
    """
    if setup.dataflow is not None:
        from ..descriptor._plain import from_plain

        try:
            return from_plain(setup.dataflow, setup.yaml)
        except ValueError as exc:
            log.warning("node %s: the daemon's parsed dataflow is not readable (%s); parsing the YAML", setup.node, exc)
    from ..descriptor import parse_dataflow

    return parse_dataflow(setup.yaml, working_dir=_path(setup.working_dir), check_paths=False)


def _node_tracing(node_id: str, dataflow_id: str, machine: str) -> NodeTracing | None:
    """This node's tracing, or None when off.

    Without any ``OTEL_*`` variable tracing is off (``tracing_config``), so OpenTelemetry is
    not even imported -- unless this process already set tracing up (an operator runtime).
    """
    if "dora_zmq.tracing" not in sys.modules and not any(k.startswith("OTEL_") for k in os.environ):
        return None
    from ..tracing import NodeTracing, setup_tracing

    provider = setup_tracing(node_id, {"dora.dataflow_id": dataflow_id})
    return NodeTracing(provider, node_id, dataflow_id, machine) if provider else None
