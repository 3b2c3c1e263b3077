"""The rest of dora-rs 1.1's ``Node`` methods, on top of ``next`` and ``send_output``.

``try_recv``, ``drain`` and ``is_empty`` read what is already queued without waiting;
``log`` and its shorthands write one line to the node's output (the daemon keeps it, ``run``
and ``logs`` show it); ``timestamp`` is the current time; ``send_output_raw`` fills a message
in place (an :class:`OutputSample` underneath) and sends it with ``send()``.
"""

from __future__ import annotations

import datetime
import sys
from typing import TYPE_CHECKING, Any, Mapping

from ._events import Event, EventQueue
from ._samples import OutputSample

__all__ = ["DoraExtras", "RawSample"]

_LEVELS = ("error", "warn", "info", "debug", "trace")


class RawSample:
    """What ``send_output_raw`` returns: memory to fill, then ``send()`` (dora's SampleHandler).

    ``with node.send_output_raw(id, n) as buf:`` fills ``buf`` (a writable memoryview) and sends
    on a clean exit (not when the block raises). ``send()`` refuses while a memoryview from
    :meth:`as_memoryview` is still open, and the sample is sent once. Unlike dora, views taken
    through other objects (a NumPy array made from the memory) are not counted.
    """

    def __init__(self, node: Any, output_id: str, sample: OutputSample, metadata: Mapping[str, Any] | None) -> None:
        self._node = node
        self._output_id = output_id
        self._sample = sample
        self._metadata = metadata
        self._views: list[memoryview] = []
        self._buffer: Any = None

    def as_buffer(self) -> Any:
        """The memory as one writable NumPy ``uint8`` array (the same object on every call)."""
        self._check_open()
        if self._buffer is None:
            self._buffer = self._sample.numpy()
        return self._buffer

    def as_memoryview(self) -> memoryview:
        """A new writable view of the message's bytes; release it before ``send()``."""
        self._check_open()
        view = memoryview(self._sample.numpy()).cast("B")
        self._views.append(view)
        return view

    def send(self) -> None:
        """Send the filled memory on the output.

        Raises:
            RuntimeError: a view from :meth:`as_memoryview` is still open.
            OutputError: it was sent already.
        """
        if any(_is_open(v) for v in self._views):
            raise RuntimeError("send_output_raw: a memoryview of the sample is still open; release() it before send()")
        self._node.send_output(self._output_id, self._sample, self._metadata)

    def __enter__(self) -> memoryview:
        return self.as_memoryview()

    def __exit__(self, exc_type: object, *rest: object) -> None:
        for view in self._views:
            view.release()
        if exc_type is None:
            self.send()

    def _check_open(self) -> None:
        if self._sample.sent:
            raise RuntimeError("send_output_raw: the sample was sent; its memory belongs to the receivers now")


def _is_open(view: memoryview) -> bool:
    try:
        view.nbytes  # noqa: B018 - raises ValueError once the view is released
    except ValueError:  # released
        return False
    return True


class DoraExtras:
    """Mixed into ``Node``: the methods use its queue, ``send_output`` and ``allocate_output``."""

    _queue: EventQueue

    if TYPE_CHECKING:  # provided by Node

        def allocate_output(self, output_id: str, nbytes: int) -> OutputSample: ...

        def _observe(self, event: Event | None) -> Event | None: ...

    def try_recv(self) -> Event | None:
        """The next event if one is waiting, else None, without waiting."""
        return self._observe(self._queue.get())

    def drain(self) -> list[Event]:
        """Every event waiting now (possibly none), without waiting."""
        events = []
        while (event := self.try_recv()) is not None:
            events.append(event)
        return events

    def is_empty(self) -> bool:
        """True when no event is waiting."""
        return not self._queue.waiting()

    def log(self, level: str, message: str, target: str | None = None, fields: Mapping[str, str] | None = None) -> None:
        """Write ``LEVEL [target] message key=value...`` as one line of the node's output.

        Raises:
            ValueError: ``level`` is not error, warn, info, debug or trace.
        """
        if level.lower() not in _LEVELS:
            raise ValueError(f"log level must be one of {', '.join(_LEVELS)}, got {level!r}")
        extra = "".join(f" {k}={v}" for k, v in (fields or {}).items())
        where = f" [{target}]" if target else ""
        print(f"{level.upper()}{where} {message}{extra}", file=sys.stdout, flush=True)  # the node's own output

    def log_error(self, message: str) -> None:
        """``log("error", message)``."""
        self.log("error", message)

    def log_warn(self, message: str) -> None:
        """``log("warn", message)``."""
        self.log("warn", message)

    def log_info(self, message: str) -> None:
        """``log("info", message)``."""
        self.log("info", message)

    def log_debug(self, message: str) -> None:
        """``log("debug", message)``."""
        self.log("debug", message)

    def log_trace(self, message: str) -> None:
        """``log("trace", message)``."""
        self.log("trace", message)

    def timestamp(self) -> datetime.datetime:
        """Now, as a UTC datetime (the clock ``metadata["timestamp"]`` uses)."""
        return datetime.datetime.now(datetime.timezone.utc)

    def send_output_raw(self, output_id: str, data_length: int, metadata: Mapping[str, Any] | None = None) -> RawSample:
        """``data_length`` bytes to fill (``as_memoryview()``) and then ``send()``, as dora's.

        Raises:
            OutputError: ``output_id`` is not declared.
        """
        return RawSample(self, output_id, self.allocate_output(output_id, data_length), metadata)
