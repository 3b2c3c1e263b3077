"""A node's receiving session, and the node's threading model (all of it, here).

Threads
    *application*: the user's code, calling ``Node.next``/``send_output``/``close`` (an asyncio
    node's ``recv_async`` runs ``next`` on one worker thread: one caller at a time, as here).
    *receiver*: ``dora-zmq-receiver-<id>``, started by :meth:`Session.begin`, ended by ``close``.
    *stdout capture* (``send_stdout_as`` only) calls ``send_output`` like the application.
    *any thread*, even inside garbage collection: a shared-memory value dropped by the
    application reports its release (``Receiver.on_release``).

Who owns what (each structure names its owner where it is defined, too)
    ``Receiver`` (SUB socket, control channel, routes, timers, stream ends, the segment
    reader, stats): the holder of the **baton** (``Session._baton``). The receiver thread
    holds it while the application is away from ``next()``; an application waiting in
    ``next()`` with an empty queue borrows it and receives on its own thread (a message is
    then decoded by the thread that wants it: no thread switch per message). The start barrier
    (``_start``) uses the sockets before the receiver thread exists, on the application thread.
    ``EventQueue``: its own lock. The baton holder pushes; the application pops (fast path:
    ``next()`` takes a queued event without the baton).
    ``Outputs`` (PUB socket, sequence numbers, ``ShmSender`` and its segment pool's sending
    side): the holder of ``Outputs.lock`` -- the application or stdout capture sending, or a
    receive step reclaiming an idle sender's segments (it only tries the lock: never blocks).
    Session fields below: the receiver thread's and the application's, as annotated.

How they talk (messages, never a shared structure)
    baton holder -> sender: new peers (``Outputs.post_peers``: a deque the sender applies
    under its lock before it decides how to send).
    any thread -> baton holder: shared-memory releases (``Receiver.on_release``: a deque, and
    a wake-up of the poll); the application wanting the baton (``_borrowers``, and the same
    wake-up). The wake-up has one meaning: "the baton holder has mail, look again".
    receiver thread -> application: events (the queue). Application -> receiver thread:
    ``_nexts`` (a counter only the application writes: "next() was called lately", see
    ``_idle_turn``) and ``close``.

Idle senders
    Releases come back on the PUB socket and were applied only when the node sent again; now
    every receive step (at least every ``MAX_POLL_MS`` on an idle node) calls
    ``Outputs.reclaim``, so a node that stopped sending frees its segments too.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from .. import _control as ctl
from .._transport import Channel, Subscriber
from .._wire import marker_topic
from ._events import Event, EventQueue, StopReason, timeout_event
from ._receiver import MAX_POLL_MS, Receiver, ReceiverSetup, SendingSide

__all__ = ["Session", "TOP_UP_EVERY"]

log = logging.getLogger(__name__)

#: A node taking events from a non-empty queue moves what waits on its socket into the queue
#: every this many ``next()`` calls (a power of two: the check is a mask).
TOP_UP_EVERY = 32
_TOP_UP_MASK = TOP_UP_EVERY - 1
#: How long the application may be away from ``next()`` before the receiver thread drains for it.
_GRACE_S = 0.005
_JOIN_S = 2.0


class Session:
    """The receiving half of a node behind one call, :meth:`next_event`."""

    def __init__(
        self, setup: ReceiverSetup, sub: Subscriber, ctrl: Channel, queue: EventQueue, sending: SendingSide
    ) -> None:
        self.node_id = setup.node_id
        self.receiver = Receiver(setup, sub, ctrl, queue, sending)  # owner: the baton holder
        self._marker_label = setup.reader_label or setup.node_id
        self._queue = queue
        self._baton = threading.Lock()  # held by whoever runs a receive step
        self._handoff = threading.Condition()  # guards _borrowers; the receiver thread sleeps on it
        self._borrowers = 0  # application threads waiting for the baton or holding it
        self._nexts = 0  # calls of next_event: written by the application only
        self._nexts_seen = 0  # the receiver thread's last look at _nexts
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"dora-zmq-receiver-{self.node_id}", daemon=True)

    # ---- start and stop (application thread) -------------------------------------------

    def attach(self, peers: ctl.Peers, deferred: list[Any]) -> None:
        """The start barrier's step 3: connect to the upstreams and subscribe (see ``_start``).

        ``deferred``: the control messages kept so far (upstreams whose exit notice is among
        them are closed by it, not here).
        """
        announced = {m.node for m in deferred if isinstance(m, ctl.UpstreamExited)}
        self.receiver.attach(peers, announced)
        self.receiver.subscribe(marker_topic(self._marker_label))

    def begin(self, deferred: list[Any]) -> None:
        """Start receiving: apply what came during start-up, then start the receiver thread.

        Timers start counting now.
        """
        self.receiver.start_timers()
        with self._baton:
            self.receiver.drain_data()
            for msg in deferred:
                self.receiver.handle_control(msg)
        self._thread.start()

    def close(self, timeout: float = _JOIN_S) -> None:
        """Stop the receiver thread, wait for it (it closes the sockets), at most ``timeout``."""
        self._closing.set()
        with self._handoff:
            self._handoff.notify_all()
        self.receiver.wakeup.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        elif self._thread.ident is None:  # never started (start-up failed): close here
            with self._baton:
                self.receiver.shutdown()

    # ---- the application's side ------------------------------------------------------

    def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event; None once the stream has ended; after ``timeout`` s, an ERROR event."""
        self._nexts += 1
        queue = self._queue
        event = queue.get()
        if event is None and not queue.ended:
            event = self._receive_until_event(timeout)
            if event is None and timeout is not None and not queue.ended:
                return timeout_event(timeout)
        elif not self._nexts & _TOP_UP_MASK:
            self.top_up()  # a node busy with queued events still drains the socket
        return event

    def top_up(self) -> None:
        """Called by ``next_event`` now and then when it took an event from the queue.

        While the queue has events, ``next()`` returns them without looking at the socket,
        and the receiver thread stays off (``next()`` is being called): a node that falls
        behind in a long burst would leave the backlog in ZeroMQ's queues, which drop the
        *newest* when full, and keep its shared-memory releases, so the sender could reuse
        nothing. Moving what waits into the input queues keeps ``queue_size`` meaning "the
        newest N".
        """
        if self._baton.acquire(blocking=False):
            try:
                self.receiver.drain_data()
                if self.receiver.has_releases():
                    self.receiver.send_releases()
            finally:
                self._baton.release()

    def _receive_until_event(self, timeout: float | None) -> Event | None:
        """The queue is empty: borrow the baton and receive on this (the caller's) thread.

        Handing the sockets to the waiting application thread saves a thread wake-up per
        message when the node keeps up; when it falls behind, the receiver thread drains in
        the background, which is what keeps ``queue_size`` meaning "the newest N".
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        receiver, queue = self.receiver, self._queue
        with self._handoff:
            self._borrowers += 1
        if not self._baton.acquire(blocking=False):
            receiver.wakeup.notify()  # get the receiver thread out of its poll
            self._baton.acquire()
        try:
            while not self._closing.is_set():
                event = queue.get()
                if event is not None or queue.ended:
                    return event
                wait_ms = receiver.poll_timeout_ms()
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    wait_ms = min(wait_ms, int(left * 1000) + 1)
                receiver.step(wait_ms)
        finally:
            self._baton.release()
            with self._handoff:
                self._borrowers -= 1
        return queue.get()  # closed: what is left, else None (never block on a dead queue)

    # ---- the receiver thread ---------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._closing.is_set():
                if not self._idle_turn():
                    continue
                with self._baton:
                    if not self._borrowers and not self._closing.is_set():
                        self.receiver.step(self.receiver.poll_timeout_ms())
        except Exception as exc:  # noqa: BLE001 - a bug here must end the stream, not hang next()
            log.exception("node %s: receiver failed; ending the event stream", self.node_id)
            self._queue.push_error(f"dora_zmq receiver failed: {type(exc).__name__}: {exc}", urgent=True)
            self._queue.stop(StopReason.INTERNAL_ERROR)
        finally:
            with self._baton:
                self.receiver.shutdown()

    def _idle_turn(self) -> bool:
        """Wait while the application thread is receiving; True when this thread should step.

        A node that keeps up comes back to next() within microseconds of handling an event.
        Taking the sockets back in between would cost two thread switches per message (and
        the GIL ping-pong that goes with them), so this thread only takes over once the
        application has not called next() for ``_GRACE_S`` (it is busy: drain for it, fire
        timers, send releases, watch control). It is never notified per event: it looks again
        every grace while the application is away, every MAX_POLL_MS while it waits in next().
        """
        with self._handoff:
            if self._closing.is_set():
                return False
            if self._borrowers:
                self._handoff.wait(MAX_POLL_MS / 1000)  # an idle node wakes 10 times a second
                return False
            if self._nexts != self._nexts_seen:  # next() was called within the last grace
                self._nexts_seen = self._nexts
                self._handoff.wait(_GRACE_S)
                return False
            return True

    # ---- snapshots (any thread) --------------------------------------------------------

    def lost(self) -> dict[str, int]:
        """Messages lost in transit per input."""
        return self.receiver.lost()
