"""The bytes of message bodies a publisher has handed to ZeroMQ and ZeroMQ still holds.

ZeroMQ bounds its queues in messages (``HWM``), not bytes: 10,000 frames of 16 MiB queued for
one slow (or never-reading) subscriber would be 160 GiB. The mark cannot follow the message
size either: libzmq 4.3.5 applies a changed ``SNDHWM``/``RCVHWM`` to open connections, and a
connection with more unacknowledged messages than the new mark then stalls for good (its
reader acknowledges only every few thousand messages), so everything sent on it afterwards is
dropped. So the mark stays fixed and the publisher bounds the bytes itself.

Bodies of at least ``zmq.COPY_THRESHOLD`` bytes go to ZeroMQ without a copy: pyzmq keeps a
reference to the object until libzmq lets go of the message (sent on every connection, or
dropped), then drops it on its garbage-collector thread. Each such body is sent as a fresh
``memoryview`` (made by the caller) with a weak reference whose callback counts the bytes released. Smaller bodies
are copied by pyzmq at once and are bounded by the mark (10,000 x 64 KiB).

Threading: :meth:`InFlight.track` and :meth:`InFlight.full` are called by the publisher's
owner only; the release callback runs on whichever thread drops the last reference (pyzmq's
garbage collector, or the owner when a send fails), under ``_lock``. ``_sent`` has one writer
(the owner), ``_released`` is written under the lock; the owner reads it without the lock (an
int read is atomic; a stale value only makes it see a little more in flight).
"""

from __future__ import annotations

import threading
import weakref
import zmq

__all__ = ["InFlight", "TRACKED_BYTES"]

#: Bodies at least this large are sent without a copy, and counted (pyzmq's own threshold).
TRACKED_BYTES = int(zmq.COPY_THRESHOLD)


class InFlight:
    """Bytes handed to ZeroMQ without a copy and not yet released, against a budget."""

    __slots__ = ("budget", "refused", "_lock", "_refs", "_released", "_sent")

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.refused = 0  # bodies not sent because the budget was spent (owner only)
        self._lock = threading.Lock()
        # id(weak reference) -> (it, its bytes): keyed by identity, as two views of equal bytes
        # are equal (and hashing a view reads all its bytes)
        self._refs: dict[int, tuple[weakref.ref[memoryview], int]] = {}
        self._sent = 0
        self._released = 0

    @property
    def bytes(self) -> int:
        """Bytes handed over and not released yet (a snapshot)."""
        return self._sent - self._released

    def full(self, nbytes: int) -> bool:
        """Whether a body of ``nbytes`` would pass the budget (one body always fits when none is in flight)."""
        in_flight = self._sent - self._released
        return in_flight > 0 and in_flight + nbytes > self.budget

    def track(self, view: memoryview, nbytes: int) -> memoryview:
        """Count ``view`` (a fresh view of a body, about to be sent without a copy) until it is dropped."""
        ref = weakref.ref(view, self._release)
        self._refs[id(ref)] = (ref, nbytes)
        self._sent += nbytes
        return view

    def _release(self, ref: weakref.ref[memoryview]) -> None:
        with self._lock:
            self._released += self._refs.pop(id(ref), (ref, 0))[1]
