"""``Stream``: the queue between two gizmos, with optional drop-oldest and an end-of-stream pill.

A stream is a ``queue.Queue`` that:

* with ``allow_drop``, never blocks a producer: when full, it discards the **oldest** item
  (a live pipeline wants the newest frame, not a backlog) and counts it in ``dropped_cnt``;
* is ended by a poison pill, ``Stream._poison`` (``None``, as in DeGirum's toolkit), put
  there by ``close()``; iterating a stream yields items until the pill, consumes it, and stops;
* never loses that pill: ``close()`` does not block even on a full stream (it drops the
  oldest item to make room, counting it), so a consumer always learns the stream ended.

Drop-oldest never throws away a pill already queued: it evicts the oldest *data* item,
and a full stream holding only pills discards the newcomer instead, since it is closed.

A reader that stops before the end of a stream ``abandon()``s it: the stream then
discards whatever is put into it, so its producers do not block forever on a stream
nobody will ever read again.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Iterator
from typing import Any, ClassVar, Final

from ._errors import StreamConfigError

__all__ = ["Stream"]

log = logging.getLogger(__name__)


_POISON: Final = None
"""The end-of-stream pill. It is ``None``, as in DeGirum's toolkit, so code that tests
``item is None`` after ``get()`` ports unchanged; compare with ``is``, never ``==``."""


class Stream(queue.Queue[Any]):
    """Queue-based iterable stream with optional drop of the oldest item.

    Attributes:
        min_queue_size: smallest non-zero ``maxsize`` accepted. It is 1 here (degirum uses 3
            to leave room for stray pills): ``close()`` never blocks and makes room for its
            pill itself, and gizmos give up blocked puts once aborted, so no slack is needed.
        allow_drop: drop the oldest item instead of blocking when full.
        dropped_cnt: how many items were dropped so far.

    Args:
        maxsize: maximum depth; 0 (the default) for unlimited.
        allow_drop: if True, ``put()`` on a full stream drops the oldest item. Defaults to False.

    Raises:
        StreamConfigError: ``maxsize`` is negative, or non-zero and below ``min_queue_size``.
    """

    min_queue_size: ClassVar[int] = 1
    _poison: ClassVar[Any] = _POISON
    """The poison pill that marks the end of a stream: ``None`` (test it with ``is``)."""

    def __init__(self, maxsize: int = 0, allow_drop: bool = False) -> None:
        if maxsize < 0 or 0 < maxsize < self.min_queue_size:
            raise StreamConfigError(
                f"incorrect stream depth {maxsize}: use 0 (unlimited) or at least {self.min_queue_size}"
            )
        super().__init__(maxsize)
        self.allow_drop = allow_drop
        self.dropped_cnt = 0
        self._abandoned = False
        self._force_closed = False

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Put an item into the stream, dropping the oldest one if full and ``allow_drop``.

        Args:
            item: the item to put.
            block: whether to block while the stream is full (ignored when ``allow_drop``).
                Defaults to True.
            timeout: how long a blocking put waits, in seconds; ``None`` (the default) waits
                as long as needed.

        Raises:
            queue.Full: the stream is full, dropping is off, and ``block`` is False or
                ``timeout`` expired.
        """
        if self._force_closed:
            return
        if self.allow_drop:
            self._put_dropping(item)
            return
        with self.not_full:
            if self._wait_for_room(block, timeout):
                self._append(item)

    def close(self, force: bool = False) -> None:
        """Close the stream by putting the poison pill.

        Never blocks: on a full stream the oldest data item is dropped (and counted in
        ``dropped_cnt``) to make room, so the pill is never lost.

        Args:
            force: also empty a bounded stream first (uncounted) and ignore every later
                ``put()``, so that only the pill is left to read. ``Composition.start()``
                opens the stream again.
        """
        if force:
            with self.mutex:
                self._force_closed = True
                if self.maxsize > 0:
                    self._forget_tasks(len(self.queue))
                    self.queue.clear()
                    self.not_full.notify_all()
                self._append(_POISON)
            return
        self._put_dropping(_POISON)

    @property
    def abandoned(self) -> bool:
        """True while the stream is abandoned (see ``abandon()``)."""
        return self._abandoned

    def abandon(self, abandon: bool = True) -> None:
        """Declare that nobody will read this stream any more (or, with False, that someone will).

        While abandoned, the stream discards every item put into it, pills included, without
        counting them as drops, so producers never block on it. Abandoning also empties it
        and wakes producers blocked on it. A gizmo that stops reading an input before its
        end (as ``FanInGizmo`` does) abandons it; ``Composition.start()`` clears the mark
        (``abandon(False)``, which also reopens a stream closed with ``close(force=True)``).

        Args:
            abandon: True to abandon the stream, False to take it back into use.
        """
        with self.mutex:
            self._abandoned = abandon
            if not abandon:
                self._force_closed = False
        if abandon:
            self.clear()  # also wakes blocked producers, which then see the mark and return

    def clear(self) -> int:
        """Discard every queued item (data and pills) and wake producers blocked on a full stream.

        Returns:
            The number of items discarded.
        """
        with self.mutex:
            count = len(self.queue)
            self.queue.clear()
            self._forget_tasks(count)
            self.not_full.notify_all()
        return count

    def __iter__(self) -> Iterator[Any]:
        """Iterate over the stream: yield items until the poison pill, which is consumed."""
        while True:
            item = self.get()
            if item is _POISON:  # identity, not `==`: items may be numpy arrays
                return
            yield item

    def _put_dropping(self, item: Any) -> None:
        """Put without blocking, evicting the oldest data item when full; atomic under the lock."""
        with self.mutex:
            if self._abandoned or (self._force_closed and item is not _POISON):
                return
            if 0 < self.maxsize <= self._qsize() and not self._evict_oldest_data():
                # Only pills are queued: the stream is closed already, so a newcomer is moot.
                if item is not _POISON:
                    self.dropped_cnt += 1
                    log.debug("stream %s closed and full: dropped %r", id(self), item)
                return
            self._append(item)

    def _wait_for_room(self, block: bool, timeout: float | None) -> bool:
        """Wait until the stream has room (caller holds ``not_full``); False if abandoned or force-closed.

        ``queue.Queue.put`` waits the same way, but would not notice an ``abandon()``.
        """
        if timeout is not None and timeout < 0:
            raise ValueError("'timeout' must be a non-negative number")
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._abandoned and not self._force_closed and 0 < self.maxsize <= self._qsize():
            remaining = None if deadline is None else deadline - time.monotonic()
            if not block or (remaining is not None and remaining <= 0):
                raise queue.Full
            self.not_full.wait(remaining)
        return not self._abandoned and not self._force_closed

    def _append(self, item: Any) -> None:
        """Queue an item and wake one reader (caller holds the lock)."""
        self._put(item)
        self.unfinished_tasks += 1
        self.not_empty.notify()

    def _evict_oldest_data(self) -> bool:
        """Remove the oldest non-pill item (caller holds the lock); False if there is none."""
        for position, queued in enumerate(self.queue):
            if queued is not _POISON:
                del self.queue[position]
                self.dropped_cnt += 1
                self._forget_tasks(1)
                return True
        return False

    def _forget_tasks(self, count: int) -> None:
        """Account for discarded items no consumer will ``task_done()`` (caller holds the lock)."""
        self.unfinished_tasks = max(0, self.unfinished_tasks - count)
        if self.unfinished_tasks == 0:
            self.all_tasks_done.notify_all()

    def __repr__(self) -> str:
        return (
            f"Stream(maxsize={self.maxsize}, allow_drop={self.allow_drop}, "
            f"qsize={self.qsize()}, dropped_cnt={self.dropped_cnt})"
        )
