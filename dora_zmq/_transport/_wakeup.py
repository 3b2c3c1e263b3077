"""A pipe that any thread (even a garbage-collector finalizer) can use to wake a poller."""

from __future__ import annotations

import os

__all__ = ["Wakeup"]


class Wakeup:
    """``notify()`` from anywhere; the owner polls ``socket`` (a file descriptor) and ``clear()``s.

    A ZeroMQ socket cannot be touched from a finalizer running in an arbitrary thread; a
    non-blocking pipe write can, and ``zmq.Poller`` watches plain file descriptors too.
    """

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)

    @property
    def socket(self) -> int:
        """The read end, for :class:`Poller`."""
        return self._r

    def notify(self) -> None:
        """Wake the poller (a full pipe already means "wake up")."""
        try:
            os.write(self._w, b"\0")
        except (BlockingIOError, OSError):
            pass

    def clear(self) -> None:
        """Consume pending wake-ups."""
        try:
            while os.read(self._r, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        """Close both ends (idempotent)."""
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._r = self._w = -1
