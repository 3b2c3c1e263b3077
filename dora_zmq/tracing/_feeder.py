"""Finished spans wait in a bounded queue; a thread hands them over, off the message path.

Threading: the message path (any thread that ends a span or sends a message) only appends to
:attr:`SpanFeeder.waiting` (a ``deque``: append and popleft are atomic, no lock). The feeding
thread owns the rest: every ``_FEED_INTERVAL_S`` (or as soon as ``FEED_AT`` spans wait) it
takes them all, under :attr:`SpanFeeder.lock`, and hands each to ``export``; then it calls
``refill`` (what the message path pops, made ahead). A flush (close, exit) takes the same lock
from another thread. Beyond ``_MAX_WAITING`` waiting spans the oldest are dropped (the batch
processor drops too when full), and reported.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from time import time_ns
from typing import Any

from ._setup import _EXPORT_TIMEOUT_S

log = logging.getLogger(__name__)

_FEED_INTERVAL_S = 0.5  # how often finished spans go to the exporter side
FEED_AT = 1024  # ... or as soon as this many are waiting
_MAX_WAITING = 16384  # beyond this the oldest are dropped
_DROP_WARN_EVERY_NS = 30 * 10**9  # a full queue is reported at most this often


class SpanFeeder:
    """The queue of finished spans and the thread that empties it.

    ``begin()`` is called before a round, ``export(span)`` for each span taken, and
    ``end(flush)`` after it (``flush``: send everything now); ``refill()`` after each round of
    the thread. An exception in ``export`` is logged and the round goes on.
    """

    def __init__(
        self,
        begin: Callable[[], None],
        export: Callable[[Any], None],
        end: Callable[[bool], None],
        refill: Callable[[], None],
    ) -> None:
        self.waiting: deque[Any] = deque(maxlen=_MAX_WAITING)
        self.lock = threading.Lock()  # held for a whole round
        self._begin, self._export, self._end, self._refill = begin, export, end, refill
        self._wake = threading.Event()
        self._closed = False
        self._drop_warned = 0  # when a full queue may be reported again (time_ns)
        self.thread = threading.Thread(target=self._loop, name="dora-otel-spans", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def add(self, finished: Any) -> None:
        """A finished span (or a producer span's fields) for the exporter, soon. Any thread.

        (The message path appends to :attr:`waiting` itself, and calls :meth:`wake` when it
        holds ``FEED_AT``: one call less per span.)
        """
        waiting = self.waiting
        waiting.append(finished)
        if len(waiting) == FEED_AT:
            self._wake.set()

    def wake(self) -> None:
        """Feed now (many spans wait)."""
        self._wake.set()

    def feed(self, flush: bool = False) -> None:
        """Hand every waiting span over (``flush``: and send everything now)."""
        with self.lock:
            waiting = self.waiting
            if len(waiting) >= _MAX_WAITING and time_ns() >= self._drop_warned:
                # The deque dropped its oldest (the message path does not count, to stay cheap).
                log.warning(
                    "tracing: more than %d spans were waiting for export; the oldest were dropped", _MAX_WAITING
                )
                self._drop_warned = time_ns() + _DROP_WARN_EVERY_NS
            self._begin()
            while waiting:
                try:
                    finished = waiting.popleft()
                except IndexError:
                    break
                try:
                    self._export(finished)
                except Exception:  # one bad span must not stop the others, but it must show
                    log.warning("could not export a span", exc_info=True)
            self._end(flush)

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(_FEED_INTERVAL_S)
            self._wake.clear()
            self.feed()
            try:
                self._refill()
            except Exception:  # the message path makes its own then
                log.warning("could not make spans ahead", exc_info=True)

    def close(self) -> None:
        """Stop the feeding thread, after handing over what waits."""
        self._closed = True
        self._wake.set()
        self.thread.join(_EXPORT_TIMEOUT_S)
        self.feed(True)
