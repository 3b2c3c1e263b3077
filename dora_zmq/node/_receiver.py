"""A node's receiver thread: drains the data and control sockets into the event queue.

Draining continuously (instead of reading in ``next()``) is what makes ``queue_size`` mean
"keep the newest N": ZeroMQ's own high-water mark would drop the newest. The thread also
fires timer inputs, and watches for its parent daemon's death (the orphan guard).
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import pyarrow as pa

from .. import _control as ctl
from .._errors import ProtocolError
from .._shm import SegmentReader, ShmDescriptor
from .._transport import Channel, Poller, Subscriber, Wakeup
from .._wire import TIMESTAMP_KEY, MessageKind, UnreadableValue, decode_frames, encode_release, timestamp_of
from ._events import EVENT_KIND, Event, EventQueue, EventType, ReceivedEvent, StopReason
from ._stream_end import EndingUpstreams

__all__ = ["Receiver", "Route", "TimerInput"]

log = logging.getLogger(__name__)

_TICK = pa.nulls(0)  # an empty NullArray, as dora 1.1's timer ticks
_MAX_POLL_MS = 100
_BATCH = 256
_STATS_EVERY_S = 1.0
_RELEASES_PER_MESSAGE = 64  # shared-memory releases sent upstream in one message (~6 KB)
# How long the application thread may be away from next() before this thread drains for it.
_GRACE_S = 0.005


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


class Receiver(threading.Thread):
    """Owns the node's SUB socket and control channel once the node has started."""

    def __init__(
        self,
        node_id: str,
        sub: Subscriber,
        ctrl: Channel,
        routes: dict[bytes, Route],
        timers: list[TimerInput],
        queue: EventQueue,
        on_peers: Callable[[Any], None],
        watch_parent: bool,
        deferred: list[Any] | None = None,
        dataflow_id: str = "",
        sent_counts: Callable[[], dict[str, int]] | None = None,
        reader_label: str = "",
    ) -> None:
        super().__init__(name=f"dora-zmq-receiver-{node_id}", daemon=True)
        self.node_id = node_id
        self.dataflow_id = dataflow_id
        self._reader_label = reader_label or node_id  # names its releases (see _readers)
        self._reported: tuple[dict[str, int], dict[str, int]] = ({}, {})
        self._reported_counts: tuple[dict[str, int], dict[str, int], dict[str, int]] = ({}, {}, {})
        self._sent_counts = sent_counts or dict
        self._next_stats = 0.0
        self._sub = sub
        self._ctrl = ctrl
        self._routes = routes
        self._timers = timers
        self._queue = queue
        self._on_peers = on_peers
        self._deferred = list(deferred or [])
        self._shm: SegmentReader | None = None
        self._releases: collections.deque[ShmDescriptor] = collections.deque()
        self._wakeup = Wakeup()
        self._closing = threading.Event()
        # Whoever runs a receive step holds ``_owner``: this thread, or the application thread
        # borrowing the sockets while it waits in next() (see ``receive_until_event``).
        self._owner = threading.Lock()
        self._handoff = threading.Condition()
        self._borrowers = 0
        #: calls of Node.next(), counted by the application thread (see ``_idle_turn``)
        self.nexts = 0
        self._nexts_seen = 0
        self._poller = Poller([self._sub, self._ctrl, self._wakeup])
        self._parent = os.getppid() if watch_parent else None
        self.malformed = 0
        self.upstream_failed: dict[str, str] = {}
        self._ending = EndingUpstreams(node_id, routes, lambda: queue.open_inputs, self._close_from)

    def close(self, timeout: float = 2.0) -> None:
        """Ask the thread to stop, wait for it, and close its sockets."""
        self._closing.set()
        with self._handoff:
            self._handoff.notify_all()
        self._wakeup.notify()
        if self.is_alive():
            self.join(timeout)

    def start(self) -> None:
        """Start the thread (timers start counting now)."""
        now = time.monotonic()
        for t in self._timers:
            t.next_at = now + t.interval_s
        with self._owner:
            self._drain_data()
            for msg in self._deferred:
                self._handle_control(msg)
        super().start()

    def run(self) -> None:
        try:
            while not self._closing.is_set():
                if not self._idle_turn():
                    continue
                with self._owner:
                    if not self._borrowers and not self._closing.is_set():
                        self._step(self._poll_timeout_ms())
        except Exception as exc:  # noqa: BLE001 - a bug here must end the stream, not hang next()
            log.exception("node %s: receiver failed; ending the event stream", self.node_id)
            self._queue.push_error(f"dora_zmq receiver failed: {type(exc).__name__}: {exc}", urgent=True)
            self._queue.stop(StopReason.INTERNAL_ERROR)
        finally:
            with self._owner:
                self._shutdown()

    def _idle_turn(self) -> bool:
        """Wait while the application thread is receiving; True when this thread should step.

        A node that keeps up comes back to next() within microseconds of handling an event.
        Taking the sockets back in between would cost two thread switches per message (and
        the GIL ping-pong that goes with them), so this thread only takes over once the
        application has not called next() for ``_GRACE_S`` (it is busy: drain for it, fire
        timers, send releases, watch control). It is never notified per event: it looks again every
        grace while the application is away, every 100 ms while it waits in next().
        """
        with self._handoff:
            if self._closing.is_set():
                return False
            if self._borrowers:
                self._handoff.wait(_MAX_POLL_MS / 1000)  # an idle node wakes 10 times a second
                return False
            if self.nexts != self._nexts_seen:  # next() was called within the last grace
                self._nexts_seen = self.nexts
                self._handoff.wait(_GRACE_S)
                return False
            return True

    def receive_until_event(self, timeout: float | None) -> Event | None:
        """Called by ``next()`` when the queue is empty: receive on this (the caller's) thread.

        Handing the sockets to the waiting application thread saves a thread wake-up per
        message when the node keeps up (a message is decoded and returned by the thread that
        wants it); when it falls behind, this thread drains in the background, which is what
        keeps ``queue_size`` meaning "the newest N".
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._handoff:
            self._borrowers += 1
        if not self._owner.acquire(blocking=False):
            self._wakeup.notify()  # get this thread out of its poll
            self._owner.acquire()
        try:
            while not self._closing.is_set():
                event = self._queue.get(0)
                if event is not None or self._queue.ended:
                    return event
                wait_ms = self._poll_timeout_ms()
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    wait_ms = min(wait_ms, int(left * 1000) + 1)
                self._step(wait_ms)
        finally:
            self._owner.release()
            with self._handoff:
                self._borrowers -= 1
        return self._queue.get(0)  # closed: what is left, else None (never block on a dead queue)

    def top_up(self) -> None:
        """Called by ``next()`` now and then when it took an event from the queue.

        While the queue has events, ``next()`` returns them without looking at the socket,
        and this thread stays off (``next()`` is being called): a node that falls behind in a
        long burst would leave the backlog in ZeroMQ's queues, which drop the *newest* when
        full, and keep its shared-memory releases, so the sender could reuse nothing. Moving
        what waits into the input queues keeps ``queue_size`` meaning "the newest N".
        """
        if self._owner.acquire(blocking=False):
            try:
                self._drain_data()
                if self._releases:
                    self._send_releases()
            finally:
                self._owner.release()

    def _step(self, timeout_ms: int) -> None:
        """Wait up to ``timeout_ms`` and handle what arrived (the caller holds ``_owner``)."""
        ready = self._poller.wait(timeout_ms)
        # Control first: when a STOP and an upstream's end-of-stream arrive together
        # (the upstream stopped on the same STOP), the node must see STOP MANUAL, not
        # ALL_INPUTS_CLOSED. Data order is unaffected: an UpstreamExited drains data first.
        if self._ctrl in ready:
            self._drain_control()
        if self._sub in ready:
            self._drain_data()
        if self._wakeup in ready or self._releases:
            self._send_releases()
        self._ending.check()
        self._fire_timers()
        self._check_parent()
        self._report_stats()

    def _shutdown(self) -> None:
        if self._shm is not None:
            self._shm.close()
        self._send_releases()
        self._sub.close()
        self._ctrl.close(200)
        self._wakeup.close()

    def _poll_timeout_ms(self) -> int:
        if not self._timers:
            return _MAX_POLL_MS
        wait = min(t.next_at for t in self._timers) - time.monotonic()
        return max(0, min(_MAX_POLL_MS, int(wait * 1000) + 1)) if wait > 0 else 0

    def _drain_data(self, limit: int | None = _BATCH) -> None:
        """Handle what waits on the data socket: at most ``limit`` messages (None: all)."""
        n = 0
        while limit is None or n < limit:
            frames = self._sub.recv_nowait()
            if frames is None:
                return
            self._handle_frames(frames)
            n += 1

    def _handle_frames(self, frames: list[Any]) -> None:
        route = self._routes.get(frames[0].bytes) if frames else None
        if route is None:
            self._malformed("unknown or missing topic", frames[0].bytes[:64] if frames else b"")
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
                event = ReceivedEvent(type=EventType.INPUT, id=input_id, kind=EVENT_KIND, value=value, metadata=msg.metadata)
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
            log.warning("node %s: %d message(s) from %s lost in transit", self.node_id, seq - route.next_seq, topic.rstrip(b"\0").decode(errors="replace"))
        route.next_seq = seq + 1

    def _open_shm(self, raw: bytes, topic: str, inputs: list[str]) -> Any:
        """Map a shared-memory value (zero-copy); released upstream once the node drops it."""
        try:
            desc = ShmDescriptor.decode(raw)
            if self._shm is None:
                self._shm = SegmentReader(on_release=self._on_release)
            return self._shm.open(desc)
        except (ProtocolError, OSError, ValueError) as exc:
            self._malformed(f"shared-memory value not readable: {exc}", topic.encode(), inputs)
            return None

    def _on_release(self, desc: ShmDescriptor) -> None:
        # May run in any thread, even inside garbage collection: only a deque append and a
        # pipe write here; the receiver thread sends the release upstream.
        self._releases.append(desc)
        if len(self._releases) == 1:  # else a wake-up is pending already (saves a syscall)
            self._wakeup.notify()

    def _send_releases(self) -> None:
        """Send what the application released, many per message (a burst releases many)."""
        self._wakeup.clear()
        while self._releases:
            batch = []
            while self._releases and len(batch) < _RELEASES_PER_MESSAGE:
                batch.append(self._releases.popleft().encode())
            self._sub.send_upstream(encode_release(self._reader_label, b"".join(batch)))

    def _malformed(self, why: str, topic: bytes, inputs: Sequence[str] = ()) -> None:
        self.malformed += 1
        if self.malformed <= 100 or self.malformed % 1000 == 0:  # a flood stays a trickle in the log
            where = f"input {', '.join(inputs)}" if inputs else f"topic {topic[:64]!r}"
            log.warning("node %s: dropped malformed data message on %s (%s); %d so far", self.node_id, where, why[:300], self.malformed)

    def _drain_control(self) -> None:
        while (got := self._ctrl.recv_nowait()) is not None:
            self._handle_control(got[1])

    def _handle_control(self, msg: Any) -> None:
        match msg:
            case ctl.StopNode(reason=reason):
                self._queue.stop(reason)
            case ctl.UpstreamExited(node=node, failed=failed, error=error, sent=sent):
                self._upstream_exited(node, failed, error, sent)
            case ctl.UpstreamRestarted(node=node):
                self._upstream_restarted(node)
            case ctl.Peers():
                self._on_peers(msg)
            case _:
                log.debug("node %s: ignoring control message %r", self.node_id, msg)

    def _upstream_exited(self, node: str, failed: bool, error: str, sent: dict[str, int] | None) -> None:
        # Data sent before the exit may still sit in the socket: take all of it first, so
        # that INPUT_CLOSED stays after the upstream's last message (the input queues keep
        # only the newest queue_size of it; nothing arriving later would be kept).
        self._drain_data(limit=None)
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
                self._queue.push_input(t.input_id, Event(type=EventType.INPUT, id=t.input_id, kind=EVENT_KIND, value=_TICK, metadata=meta))
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
        counts = (dict(self._queue.received), self._sent_counts(), self._queue.depths())
        if (drops, lost) == self._reported and counts == self._reported_counts:
            return
        for input_id, n in drops.items():
            if n > self._reported[0].get(input_id, 0):
                log.warning("node %s: input %s has dropped %d message(s) so far (queue_size full)", self.node_id, input_id, n)
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
