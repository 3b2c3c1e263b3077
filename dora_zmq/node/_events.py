"""The event queue between a node's receiver thread and ``Node.next()``.

Each input has its own bounded deque: when full, the *oldest* message is dropped and counted
(dora's ``queue_size`` keeps the newest N). Each input also holds at most
``DORA_ZMQ_QUEUE_BYTES`` of values (256 MiB by default; ZeroMQ's queues are bounded the same
way, see ``_transport``): 10,000 queued 6 MB frames would be 60 GB, so past that budget the
oldest go too, counted as the same drops. Control events (INPUT_CLOSED, NODE_FAILED, STOP)
go to a separate unbounded deque and are never dropped. ``get`` returns the event that arrived
first across all deques, so an INPUT_CLOSED always comes after that input's last message.

Owner: its own lock (the session's baton holder pushes, the application pops; see
``_session``). ``get`` never waits: waiting for an event is the session's (it receives).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Mapping

import pyarrow as pa

from .._control import StopReason
from .._transport import queue_bytes
from .._wire import value_bytes

__all__ = ["EVENT_KIND", "Event", "EventQueue", "EventType", "ReceivedEvent", "StopReason", "timeout_event"]


class EventType:
    """Event ``type`` strings, as dora's Python API."""

    INPUT = "INPUT"
    INPUT_CLOSED = "INPUT_CLOSED"
    NODE_FAILED = "NODE_FAILED"
    STOP = "STOP"
    ERROR = "ERROR"
    UNKNOWN = "UNKNOWN"
    NODE_RESTARTED = "NODE_RESTARTED"


EVENT_KIND = "dora"
"""The ``kind`` every event carries, as dora 1.1's events do (``"dora"`` for the dataflow's own)."""


class Event(dict):  # type: ignore[type-arg]
    """An event dict (``type``, ``id``, ``kind``, ``value``, ``metadata``...).

    ``event["data"]`` (the value as bytes, the older dora API) is computed on first access, so
    nodes that only use the zero-copy ``value`` never pay for a copy. It counts as present
    from the start on INPUT events (``"data" in event``, ``event.get("data")``): dora-era code
    tests the key before reading it.

    INPUT events from another node also carry, as attributes (not keys, so the dict stays
    exactly dora's), what the wire says of the message; 0 for timer ticks and other events.

    Attributes:
        sent_ns: the sender's wall clock when it sent the message, ns since the epoch.
        received_ns: this node's wall clock when its receiver thread took the message.
        seq: the message's sequence number on its output (1, 2, ...).
    """

    sent_ns: int = 0
    received_ns: int = 0
    seq: int = 0

    def __missing__(self, key: str) -> Any:
        if key == "data" and dict.get(self, "type") == EventType.INPUT:
            value = dict.get(self, "value")
            data = value_bytes(value) if isinstance(value, pa.Array) else b""
            self["data"] = data
            return data
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or (key == "data" and dict.get(self, "type") == EventType.INPUT)

    def get(self, key: str, default: Any = None) -> Any:
        """``dict.get``, with the lazily computed ``data`` of an INPUT event."""
        return self[key] if key in self else default


class ReceivedEvent(Event):
    """An INPUT event from another node: :class:`Event` with its wire facts in slots.

    Slots, because setting attributes on a plain dict subclass creates its ``__dict__`` (about
    1 µs a message); these cost nothing more than the event itself.
    """

    __slots__ = ("sent_ns", "received_ns", "seq")


class EventQueue:
    """Thread-safe event buffer with per-input drop-oldest queues."""

    def __init__(self, queue_sizes: Mapping[str, int], max_bytes: int | None = None) -> None:
        self._lock = threading.Lock()
        # (arrival number, event, value bytes) per input
        self._inputs: dict[str, deque[tuple[int, Event, int]]] = {k: deque() for k in queue_sizes}
        self._sizes = dict(queue_sizes)
        self._max_bytes = queue_bytes() if max_bytes is None else max_bytes
        self._bytes: dict[str, int] = {k: 0 for k in queue_sizes}
        self.drops: dict[str, int] = {k: 0 for k in queue_sizes}
        self.received: dict[str, int] = {k: 0 for k in queue_sizes}  # INPUT events queued, ever
        self._control: deque[tuple[int, Event]] = deque()
        self._priority: deque[Event] = deque()
        self._open = set(queue_sizes)
        self._seq = 0
        self._ended = False
        self._stop_sent = False
        # MANUAL once the dataflow is being stopped. The node's end-of-stream carries it, so a
        # downstream node whose inputs close because its upstreams obeyed that STOP gets STOP
        # MANUAL too, even when their end-of-stream overtakes its own STOP (a STOP reaches the
        # nodes one after another, not at once).
        self.stopped_by: str | None = None
        self._upstream_stop: str | None = None
        self._failed_queued: dict[str, Event] = {}  # NODE_FAILED events not taken yet, by node

    @property
    def ended(self) -> bool:
        """True once the stream has ended and nothing more will come."""
        with self._lock:
            return self._ended and not self._priority

    @property
    def open_inputs(self) -> frozenset[str]:
        """Inputs not closed yet."""
        with self._lock:
            return frozenset(self._open)

    def depths(self) -> dict[str, int]:
        """INPUT events waiting per input, now."""
        with self._lock:
            return {k: len(q) for k, q in self._inputs.items()}

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """INPUT events queued ever and waiting now, per input, read together: the node's final
        report is exact (received - waiting at close = what its code got, drops included)."""
        with self._lock:
            return dict(self.received), {k: len(q) for k, q in self._inputs.items()}

    def waiting(self) -> bool:
        """True when ``get`` would return an event now."""
        with self._lock:
            if self._priority:
                return True
            return not self._ended and (bool(self._control) or any(self._inputs.values()))

    def push_input(self, input_id: str, event: Event) -> bool:
        """Queue an INPUT event; returns False if it displaced (dropped) an older one."""
        with self._lock:
            if input_id not in self._open:
                return True
            q = self._inputs[input_id]
            self.received[input_id] += 1
            value = event.get("value")
            nbytes = value.get_total_buffer_size() if isinstance(value, pa.Array) else 0  # O(1)
            dropped = False
            while q and (len(q) >= self._sizes[input_id] or self._bytes[input_id] + nbytes > self._max_bytes):
                self._bytes[input_id] -= q.popleft()[2]
                self.drops[input_id] += 1
                dropped = True
            self._seq += 1
            q.append((self._seq, event, nbytes))
            self._bytes[input_id] += nbytes
            return not dropped

    def close_inputs(
        self, input_ids: list[str], *, failed: str | None = None, source: str = "", stop: str | None = None
    ) -> None:
        """Close inputs fed by ``source`` (each once); a ``failed`` upstream adds NODE_FAILED first.

        NODE_FAILED is dora 1.1's: one event for the failed node, ``id`` its node id, ``value``
        ``{"source_node_id", "error", "affected_input_ids"}`` (``error`` and ``source`` also at
        the top). ``stop`` is the STOP reason the upstream ended on (MANUAL or None): when the
        last input closes, the STOP event carries it instead of ALL_INPUTS_CLOSED.
        """
        with self._lock:
            closing = [i for i in dict.fromkeys(input_ids) if i in self._open]
            if not closing:
                return
            self._open.difference_update(closing)
            if stop == StopReason.MANUAL:
                self._upstream_stop = stop
            if failed is not None and source in self._failed_queued:
                # the node's other outputs failed too: one event per failed node, as dora
                self._failed_queued[source]["value"]["affected_input_ids"].extend(closing)
            elif failed is not None:
                detail = {"source_node_id": source, "error": failed, "affected_input_ids": closing}
                event = Event(
                    type=EventType.NODE_FAILED,
                    id=source,
                    kind=EVENT_KIND,
                    source=source,
                    error=failed,
                    value=detail,
                    metadata={},
                )
                self._failed_queued[source] = event
                self._push_control(event)
            for input_id in closing:
                self._push_control(
                    Event(type=EventType.INPUT_CLOSED, id=input_id, kind=EVENT_KIND, value=None, metadata={})
                )
            if not self._open and not self._stop_sent:
                self._stop_sent = True
                if self._upstream_stop is not None:
                    self.stopped_by = self._upstream_stop
                self._push_control(_stop(self._upstream_stop or StopReason.ALL_INPUTS_CLOSED))

    def close_input(
        self, input_id: str, *, failed: str | None = None, source: str = "", stop: str | None = None
    ) -> None:
        """:meth:`close_inputs` for one input."""
        self.close_inputs([input_id], failed=failed, source=source, stop=stop)

    def stop(self, reason: str = StopReason.MANUAL) -> None:
        """Deliver STOP before anything still queued; the stream ends after it."""
        with self._lock:
            if reason == StopReason.MANUAL:
                self.stopped_by = reason
            if self._stop_sent and reason not in (StopReason.DAEMON_LOST, StopReason.INTERNAL_ERROR):
                return
            self._stop_sent = True
            self._priority.append(_stop(reason))

    def push_notice(self, event: Event) -> None:
        """Queue a control event (e.g. NODE_RESTARTED) in arrival order; never dropped."""
        with self._lock:
            if self._stop_sent:
                return
            self._push_control(event)

    def push_error(self, message: str, urgent: bool = False) -> None:
        """Queue an ERROR event; ``urgent`` puts it before anything queued (and before a STOP)."""
        with self._lock:
            event = Event(type=EventType.ERROR, id=None, kind=EVENT_KIND, error=message, value=None, metadata={})
            if urgent:
                self._priority.append(event)
            else:
                self._push_control(event)

    def get(self) -> Event | None:
        """The next event, or None when none is waiting (or the stream has ended)."""
        with self._lock:
            event = self._pop()
            if event is not None and event["type"] == EventType.STOP:
                self._ended = True
            return event

    def _pop(self) -> Event | None:
        if self._priority:
            return self._priority.popleft()
        if self._ended:
            return None
        best_input: str | None = None
        first = self._control[0][0] if self._control else None
        for input_id, q in self._inputs.items():
            if q and (first is None or q[0][0] < first):
                best_input, first = input_id, q[0][0]
        if best_input is not None:
            _, event, nbytes = self._inputs[best_input].popleft()
            self._bytes[best_input] -= nbytes
            return event
        if not self._control:
            return None
        event = self._control.popleft()[1]
        if event["type"] == EventType.NODE_FAILED:
            self._failed_queued.pop(event["id"], None)
        return event

    def _push_control(self, event: Event) -> None:
        self._seq += 1
        self._control.append((self._seq, event))


def timeout_event(timeout: float) -> Event:
    """What ``next(timeout)`` returns when nothing came in time (dora-rs 1.1's ERROR event)."""
    return Event(
        type=EventType.ERROR,
        id=None,
        kind=EVENT_KIND,
        value=None,
        metadata={},
        error=f"Timeout event stream error: Receiver timed out (no event within {timeout:g} s)",
    )


def _stop(reason: str) -> Event:
    return Event(type=EventType.STOP, id=reason, kind=EVENT_KIND, value=None, metadata={})
