"""The receive step: what the holder of a node's sockets does with what arrived.

Draining continuously (instead of reading in ``next()``) is what makes ``queue_size`` mean
"keep the newest N": ZeroMQ's own high-water mark would drop the newest. A step also fires
timer inputs, sends shared-memory releases upstream, applies control messages and watches
for its parent daemon's death (the orphan guard).

Who runs a step, and when, is the session's business (see ``_session``, which holds the
threading model): every method here runs on whichever thread holds the session's baton.
"""

from __future__ import annotations

import collections
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import pyarrow as pa

from .. import _control as ctl
from .._errors import ControlError, ProtocolError
from .._shm import SegmentReader, ShmDescriptor
from .._transport import Channel, Poller, Subscriber, Wakeup
from .._wire import TIMESTAMP_KEY, MessageKind, UnreadableValue, decode_frames, encode_release, timestamp_of
from ._events import EVENT_KIND, Event, EventQueue, EventType, ReceivedEvent, StopReason
from ._stream_end import EndingUpstreams

__all__ = ["MAX_POLL_MS", "Receiver", "ReceiverSetup", "Route", "SendingSide", "TimerInput"]

log = logging.getLogger(__name__)

_TICK = pa.nulls(0)  # an empty NullArray, as dora 1.1's timer ticks
#: The longest a step waits: an idle node looks at its timers, parent and stats this often.
MAX_POLL_MS = 100
_BATCH = 256  # data messages handled per step before control and timers get a turn
_STATS_EVERY_S = 1.0
_RELEASES_PER_MESSAGE = 64  # shared-memory releases sent upstream in one message (~6 KB)
_LOGGED_MALFORMED = 100  # malformed messages logged one by one; past that, one line per...
_MALFORMED_LOG_EVERY = 1000  # ...this many (a flood stays a trickle in the log)
_TOPIC_SHOWN = 64  # bytes of an unknown topic quoted in a log line
_WHY_SHOWN = 300  # characters of a decoder's complaint quoted in a log line
_CTRL_LINGER_MS = 200  # how long the last stats report may take to leave at close


class SendingSide(Protocol):
    """What the receive step tells the node's sending side (``_outputs.Outputs``), by message."""

    def post_peers(self, peers: ctl.Peers) -> None:
        """New peer endpoints: which outputs may use shared memory (applied by the sender)."""

    def sent_counts(self) -> dict[str, int]:
        """Messages sent per output (a snapshot, for the stats report)."""

    def reclaim(self) -> None:
        """Apply waiting shared-memory releases if the sender is idle (never blocks)."""


@dataclass(slots=True)
class Route:
    """Where messages of one upstream topic go: the inputs fed by it, and loss accounting."""

    node: str
    inputs: list[str]
    next_seq: int = 0
    lost: int = 0
    output: str = ""  # the upstream's output id (its exit notice counts messages per output)


@dataclass(slots=True)
class TimerInput:
    """A ``dora/timer/...`` input: ticks generated locally at ``interval_s``."""

    input_id: str
    interval_s: float
    next_at: float = field(default=0.0)


@dataclass(frozen=True, slots=True)
class ReceiverSetup:
    """What a node receives, fixed at start: its inputs' routes and timers, and its names."""

    node_id: str
    routes: dict[bytes, Route]
    timers: list[TimerInput] = field(default_factory=list)
    dataflow_id: str = ""
    machine: str = ""  # the machine this node publishes under (picks ipc or tcp per peer)
    reader_label: str = ""  # names its releases upstream (see _readers); the node id if empty
    watch_parent: bool = False  # a spawned node stops when its daemon (parent) dies


class Receiver:
    """The node's SUB socket, control channel and everything they feed, one step at a time.

    Owner: the holder of the session's baton (one thread at a time; no lock of its own),
    except :meth:`on_release` (any thread: a deque append and a pipe write) and the
    snapshots :meth:`lost` and ``upstream_failed`` (read by the application thread).
    """

    def __init__(
        self, setup: ReceiverSetup, sub: Subscriber, ctrl: Channel, queue: EventQueue, sending: SendingSide
    ) -> None:
        self.node_id = setup.node_id
        self.dataflow_id = setup.dataflow_id
        self._machine = setup.machine
        self._reader_label = setup.reader_label or setup.node_id
        self._reported: tuple[dict[str, int], dict[str, int]] = ({}, {})
        self._reported_counts: tuple[dict[str, int], dict[str, int], dict[str, int]] = ({}, {}, {})
        self._sending = sending
        self._next_stats = 0.0
        self._sub = sub
        self._ctrl = ctrl
        self._routes = setup.routes
        self._timers = setup.timers
        self._queue = queue
        self._shm: SegmentReader | None = None
        # Releases of shared-memory values: appended by any thread (on_release), sent by the step.
        self._releases: collections.deque[ShmDescriptor] = collections.deque()
        # Mail for the step: one meaning, "look again" (a release waits, or the session wants
        # the baton back); poll() returns when it is notified.
        self.wakeup = Wakeup()
        self._poller = Poller([self._sub, self._ctrl, self.wakeup])
        self._parent = os.getppid() if setup.watch_parent else None
        self.malformed = 0
        self.upstream_failed: dict[str, str] = {}
        self._ending = EndingUpstreams(self.node_id, self._routes, lambda: queue.open_inputs, self._close_from)

    def start_timers(self) -> None:
        """Timers start counting now."""
        now = time.monotonic()
        for t in self._timers:
            t.next_at = now + t.interval_s

    def attach(self, peers: ctl.Peers, announced: set[str]) -> None:
        """At start: connect to the upstream peers, subscribe, close inputs of those that ended.

        ``announced``: upstreams whose ``UpstreamExited`` came during start-up (the daemon
        replays them); those are closed by that message, with the right NODE_FAILED-or-not:
        closing them here would call a clean exit (a shell script that only prints) a failure.
        """
        self._connect(peers)
        for node in peers.exited:
            if node not in peers.endpoints and node not in announced:
                inputs = [i for route in self._routes.values() if route.node == node for i in route.inputs]
                self._queue.close_inputs(inputs, failed="node exited before the dataflow started", source=node)

    def subscribe(self, marker: bytes) -> None:
        """Subscribe to every input's topic, then to ``marker`` (which tells upstreams we are here)."""
        for topic in self._routes:
            self._sub.subscribe(topic)
        self._sub.subscribe(marker)

    def _connect(self, peers: ctl.Peers) -> None:
        self._sending.post_peers(peers)
        for route in self._routes.values():
            ep = peers.endpoints.get(route.node)
            if ep is not None:
                try:
                    self._sub.connect(ep.for_peer(self._machine))
                except ControlError as exc:  # a forged or broken peer list costs that entry only
                    log.warning("node %s: ignoring the endpoint of upstream node %s: %s", self.node_id, route.node, exc)

    def step(self, timeout_ms: int) -> None:
        """Wait up to ``timeout_ms`` and handle what arrived (the caller holds the baton)."""
        ready = self._poller.wait(timeout_ms)
        # Control first: when a STOP and an upstream's end-of-stream arrive together
        # (the upstream stopped on the same STOP), the node must see STOP MANUAL, not
        # ALL_INPUTS_CLOSED. Data order is unaffected: an UpstreamExited drains data first.
        if self._ctrl in ready:
            self._drain_control()
        if self._sub in ready:
            self.drain_data()
        if self.wakeup in ready:
            self.wakeup.clear()
        if self._releases:
            self.send_releases()
        self._ending.check()
        self._fire_timers()
        self._check_parent()
        self._report_stats()
        self._sending.reclaim()

    def shutdown(self) -> None:
        """Close the sockets (the last step: the releases still waiting leave first)."""
        if self._shm is not None:
            self._shm.close()
        self.send_releases()
        self._sub.close()
        self._ctrl.close(_CTRL_LINGER_MS)
        self.wakeup.close()

    def poll_timeout_ms(self) -> int:
        """How long the next step may wait: until the next timer, at most MAX_POLL_MS."""
        if not self._timers:
            return MAX_POLL_MS
        wait = min(t.next_at for t in self._timers) - time.monotonic()
        return max(0, min(MAX_POLL_MS, int(wait * 1000) + 1)) if wait > 0 else 0

    def drain_data(self, limit: int | None = _BATCH) -> None:
        """Handle what waits on the data socket: at most ``limit`` messages (None: all)."""
        n = 0
        while limit is None or n < limit:
            frames = self._sub.recv_nowait()
            if frames is None:
                return
            self._handle_frames(frames)
            n += 1
            # A receiver that keeps up finds one message per wake-up: asking the socket whether
            # another waits costs less than the failed read that would otherwise end this loop.
            # Only after the first: a backlog is read until a read fails, not asked per message.
            if n == 1 and not self._sub.pending():
                return

    def _handle_frames(self, frames: list[Any]) -> None:
        route = self._routes.get(frames[0].bytes) if frames else None
        if route is None:
            self._malformed("unknown or missing topic", frames[0].bytes[:_TOPIC_SHOWN] if frames else b"")
            return
        try:
            msg = decode_frames(frames)
        except UnreadableValue as exc:
            self._advance(route, exc.seq, frames[0].bytes)  # dropped here, not lost in transit
            self._malformed(str(exc), frames[0].bytes, route.inputs)
            return
        except ProtocolError as exc:
            self._malformed(str(exc), frames[0].bytes, route.inputs)
            return
        except Exception as exc:  # noqa: BLE001 - decode_frames raises only ProtocolError; a
            # bug there must still not kill this thread: the node would then wait forever
            # for events that can no longer arrive.
            self._malformed(f"undecodable: {type(exc).__name__}: {exc}", frames[0].bytes, route.inputs)
            return
        self._advance(route, msg.seq, frames[0].bytes)
        if self._ending:
            self._ending.progress(route.node)
        value = msg.value
        if msg.kind is MessageKind.SHM:
            value = self._open_shm(msg.shm or b"", msg.topic, route.inputs)
            if value is None:
                return
        if value is not None:  # DATA or SHM
            msg.metadata[TIMESTAMP_KEY] = timestamp_of(msg.sent_ns)  # as dora: the send time
            received_ns = time.time_ns()
            for input_id in route.inputs:
                event = ReceivedEvent(
                    type=EventType.INPUT, id=input_id, kind=EVENT_KIND, value=value, metadata=msg.metadata
                )
                event.sent_ns, event.received_ns, event.seq = msg.sent_ns, received_ns, msg.seq
                self._queue.push_input(input_id, event)
            return
        error = str(msg.metadata.get("error", "")) if msg.kind is MessageKind.FAILED else None
        if error is not None:
            self.upstream_failed[route.node] = error
        stop = msg.metadata.get("stop") if msg.kind is MessageKind.EOS else None
        inputs = route.inputs
        if error is not None:
            # A failed node ends all its outputs: close every input it feeds now, with one
            # NODE_FAILED (as dora). Its outputs share one socket, so nothing it sent on the
            # others before failing is still on the way.
            inputs = [i for r in self._routes.values() if r.node == route.node for i in r.inputs]
        self._queue.close_inputs(inputs, failed=error, source=route.node, stop=stop if isinstance(stop, str) else None)

    def _advance(self, route: Route, seq: int, topic: bytes) -> None:
        """Account for message ``seq`` of ``route``: a gap before it was lost in transit."""
        if seq > route.next_seq and route.next_seq:
            route.lost += seq - route.next_seq
            log.warning(
                "node %s: %d message(s) from %s lost in transit",
                self.node_id,
                seq - route.next_seq,
                topic.rstrip(b"\0").decode(errors="replace"),
            )
        route.next_seq = seq + 1

    def _open_shm(self, raw: bytes, topic: str, inputs: list[str]) -> Any:
        """Map a shared-memory value (zero-copy); released upstream once the node drops it."""
        try:
            desc = ShmDescriptor.decode(raw)
            if self._shm is None:
                self._shm = SegmentReader(on_release=self.on_release)
            return self._shm.open(desc)
        except (ProtocolError, OSError, ValueError) as exc:
            self._malformed(f"shared-memory value not readable: {exc}", topic.encode(), inputs)
            return None

    def on_release(self, desc: ShmDescriptor) -> None:
        """The application dropped a shared-memory value: queue its release upstream.

        May run in any thread, even inside garbage collection: only a deque append and a
        pipe write here; the next step sends the release.
        """
        self._releases.append(desc)
        if len(self._releases) == 1:  # else a wake-up is pending already (saves a syscall)
            self.wakeup.notify()

    def has_releases(self) -> bool:
        """Whether releases wait to be sent."""
        return bool(self._releases)

    def send_releases(self) -> None:
        """Send what the application released, many per message (a burst releases many)."""
        while self._releases:
            batch: list[bytes] = []
            while self._releases and len(batch) < _RELEASES_PER_MESSAGE:
                batch.append(self._releases.popleft().encode())
            self._sub.send_upstream(encode_release(self._reader_label, b"".join(batch)))

    def _malformed(self, why: str, topic: bytes, inputs: Sequence[str] = ()) -> None:
        self.malformed += 1
        if self.malformed <= _LOGGED_MALFORMED or self.malformed % _MALFORMED_LOG_EVERY == 0:
            where = f"input {', '.join(inputs)}" if inputs else f"topic {topic[:_TOPIC_SHOWN]!r}"
            log.warning(
                "node %s: dropped malformed data message on %s (%s); %d so far",
                self.node_id,
                where,
                why[:_WHY_SHOWN],
                self.malformed,
            )

    def _drain_control(self) -> None:
        while (got := self._ctrl.recv_nowait()) is not None:
            self.handle_control(got[1])

    def handle_control(self, msg: Any) -> None:
        """Apply one control message from the daemon (also those deferred during start-up)."""
        match msg:
            case ctl.StopNode(reason=reason):
                self._queue.stop(reason)
            case ctl.UpstreamExited(node=node, failed=failed, error=error, sent=sent):
                self._upstream_exited(node, failed, error, sent)
            case ctl.UpstreamRestarted(node=node):
                self._upstream_restarted(node)
            case ctl.Peers():
                self._connect(msg)
            case _:
                log.debug("node %s: ignoring control message %r", self.node_id, msg)

    def _upstream_exited(self, node: str, failed: bool, error: str, sent: dict[str, int] | None) -> None:
        # Data sent before the exit may still sit in the socket: take all of it first, so
        # that INPUT_CLOSED stays after the upstream's last message (the input queues keep
        # only the newest queue_size of it; nothing arriving later would be kept).
        self.drain_data(limit=None)
        err = (error or "upstream node failed") if failed else None
        if err is not None and node in self.upstream_failed:
            err = None  # already reported in-band
        if sent is not None:
            # Its counts are known: close once the tail is in (or overdue), counting what
            # never arrived; the in-band marker, if it comes, closes the inputs first.
            self._ending.exited(node, sent, err)
            return
        inputs = [i for route in self._routes.values() if route.node == node for i in route.inputs]
        self._queue.close_inputs(inputs, failed=err, source=node)

    def _close_from(self, inputs: list[str], failed: str | None, source: str) -> None:
        self._queue.close_inputs(inputs, failed=failed, source=source)

    def _upstream_restarted(self, node: str) -> None:
        """An upstream node is started again (restart_policy): its inputs stay open."""
        routes = [r for r in self._routes.values() if r.node == node]
        if not routes:
            return
        for route in routes:
            route.next_seq = 0  # the new process numbers its messages from 1 again
        self._queue.push_notice(Event(type=EventType.NODE_RESTARTED, id=node, kind=EVENT_KIND, value=None, metadata={}))

    def _fire_timers(self) -> None:
        if not self._timers:
            return
        now = time.monotonic()
        for t in self._timers:
            if now >= t.next_at:
                meta = {TIMESTAMP_KEY: timestamp_of(time.time_ns())}
                self._queue.push_input(
                    t.input_id, Event(type=EventType.INPUT, id=t.input_id, kind=EVENT_KIND, value=_TICK, metadata=meta)
                )
                # Skip missed ticks instead of bursting to catch up (as a real-time timer should).
                t.next_at += t.interval_s * max(1, int((now - t.next_at) / t.interval_s) + 1)

    def _report_stats(self) -> None:
        # Counters are visible while the dataflow runs (`dora-zmq list`, `dora-zmq top`), not
        # only at the end: once a second, and only when one changed (an idle node is silent).
        now = time.monotonic()
        if now < self._next_stats:
            return
        self._next_stats = now + _STATS_EVERY_S
        drops = dict(self._queue.drops)
        lost = self.lost()
        counts = (dict(self._queue.received), self._sending.sent_counts(), self._queue.depths())
        if (drops, lost) == self._reported and counts == self._reported_counts:
            return
        for input_id, n in drops.items():
            if n > self._reported[0].get(input_id, 0):
                log.warning(
                    "node %s: input %s has dropped %d message(s) so far (queue_size full)", self.node_id, input_id, n
                )
        self._reported = (drops, lost)
        self._reported_counts = counts
        self._ctrl.send(ctl.NodeStats(self.dataflow_id, self.node_id, drops, lost, *counts))

    def lost(self) -> dict[str, int]:
        """Messages lost in transit per input (gaps in the sender's sequence numbers)."""
        return {i: r.lost for r in self._routes.values() for i in r.inputs}

    def _check_parent(self) -> None:
        if self._parent is not None and os.getppid() != self._parent:
            log.error("node %s: its daemon (pid %d) is gone; stopping", self.node_id, self._parent)
            self._parent = None
            self._queue.stop(StopReason.DAEMON_LOST)
