"""``Gizmo``: the base class of every pipeline block, and how gizmos are wired together.

A gizmo owns its *input* streams and keeps references to the input streams of the gizmos
it feeds (its outputs). ``consumer.connect_to(producer, inp)`` — or ``producer >> consumer[inp]``
— adds ``consumer``'s input ``inp`` to ``producer``'s outputs, so one producer can feed
any number of consumers (fan-out: each consumer receives every item).

``send_result()`` must never hang a stopping pipeline. A blocking put on a full,
non-dropping stream therefore waits in slices of ``PUT_POLL_INTERVAL_S`` and gives up once
the gizmo is aborted (``Composition.request_stop()`` aborts every gizmo); the item is then
discarded, and an end-of-stream pill is forced in with ``Stream.close()``, which never blocks.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol, TypeVar

from ._errors import GizmoInputError, StreamConfigError
from ._meta import StreamMeta
from ._stream import Stream
from ._timing import KEY_GIZMO, KEY_TIMESTAMP, tag_timing

if TYPE_CHECKING:
    from ._composition import Composition

__all__ = ["PUT_POLL_INTERVAL_S", "Gizmo", "InputSpec", "connected_gizmos", "empty_run", "has_empty_run"]

log = logging.getLogger(__name__)

PUT_POLL_INTERVAL_S: Final = 0.05
"""How often a put blocked on a full stream re-checks the abort flag, in seconds."""

InputSpec = tuple[int] | tuple[int, bool]
"""One input stream's ``(maxsize, allow_drop)``; ``(maxsize,)`` means no dropping."""

_Run = TypeVar("_Run", bound=Callable[..., Any])


def empty_run(fn: _Run) -> _Run:
    """Mark a ``run()`` that does nothing: a composition starts no thread for its gizmo.

    Such a gizmo's outputs are not closed by the composition either (nothing ends).

    Args:
        fn: the ``run`` method to mark.

    Returns:
        The same function, marked.
    """
    fn.__empty_run__ = True  # type: ignore[attr-defined]
    return fn


def has_empty_run(gizmo: Gizmo) -> bool:
    """True if the gizmo's ``run()`` is marked with ``empty_run`` (it gets no thread)."""
    return bool(getattr(gizmo.run, "__empty_run__", False))


class Watchdog(Protocol):
    """What ``Gizmo.watchdog`` must offer: ``tick()`` is called once per result sent."""

    def tick(self) -> None:
        """Record one unit of activity."""


class Gizmo:
    """Base class for all gizmos: streaming pipeline processing blocks.

    Subclasses implement ``run()``, which a ``Composition`` calls in a thread of its own
    (a gizmo that keeps the default, empty ``run()`` gets no thread). Data elements are
    usually ``StreamData`` objects.

    Attributes:
        name: the gizmo's name in logs and errors; defaults to the class name, settable.
        result_cnt: how many results ``send_result()`` sent since the composition started.
        composition: the composition this gizmo was added to, if any.
        error: the exception the last ``run()`` raised, if any.
        start_time_s: when the last ``run()`` started (``time.time()``).
        elapsed_s: how long the last ``run()`` took, once it returned normally.
        fps: results per second of the last ``run()``, once it returned normally.
        watchdog: an object whose ``tick()`` is called for every result sent, or None.
        key_gizmo: key of the gizmo name in a timing entry (class attribute).
        key_timestamp: key of the send time in a timing entry (class attribute).

    Args:
        input_stream_sizes: one ``(maxsize, allow_drop)`` tuple per input stream; a maxsize of
            0 means unlimited depth. Empty (the default) for a gizmo without inputs.

    Raises:
        StreamConfigError: an input spec is not a ``(maxsize, allow_drop)`` tuple or has a bad depth.
    """

    key_gizmo: ClassVar[str] = KEY_GIZMO
    key_timestamp: ClassVar[str] = KEY_TIMESTAMP

    def __init__(self, input_stream_sizes: Sequence[InputSpec] = ()) -> None:
        self._inputs: list[Stream] = [_make_input(spec) for spec in input_stream_sizes]
        self._output_refs: list[Stream] = []
        # Neighbours in both directions; a dict keeps connection order (an ordered set).
        self._connected_gizmos: dict[Gizmo, None] = {}
        self._abort = False
        self.name: str = type(self).__name__
        self.result_cnt = 0
        self.composition: Composition | None = None
        self.error: Exception | None = None
        self.start_time_s = time.time()
        self.elapsed_s = 0.0
        self.fps = 0.0
        self.watchdog: Watchdog | None = None

    @empty_run
    def run(self) -> None:
        """Run the processing loop: read inputs (if any), process, ``send_result()``.

        Return when the inputs end (a ``for item in self.get_input(0)`` loop ends by
        itself at the poison pill; after ``get()`` or ``get_nowait()``, compare the item
        with ``Stream._poison`` using ``is``) or when ``self._abort`` becomes True, which
        long-running loops should check on every iteration. Read each input until it
        ends, or ``abandon()`` it when you stop reading early, or its producer may block
        on a full stream for ever. There is no need to close the outputs: the
        composition does it when ``run()`` returns.

        The default does nothing, and the composition starts no thread for it.
        """

    def get_tags(self) -> list[str]:
        """The meta tags this gizmo appends under; by default just its ``name``.

        ``Composition`` matches them against other gizmos' ``require_tags()``.

        Returns:
            The tags (a new list).
        """
        return [self.name]

    def require_tags(self, inp: int) -> list[str]:
        """The meta tags this gizmo needs from upstream gizmos on one input; none by default.

        ``Composition(...)`` refuses a gizmo whose required tags no connected gizmo provides.

        Args:
            inp: the input index.

        Returns:
            The required tags (a new list).
        """
        return []

    def abort(self, abort: bool = True) -> None:
        """Set or clear the abort flag that asks ``run()`` to stop.

        Args:
            abort: True to request the run loop to stop, False to clear the request.
        """
        self._abort = abort

    def get_input(self, inp: int) -> Stream:
        """Get one input stream by index.

        Args:
            inp: index of the input stream.

        Returns:
            The input stream at that index.

        Raises:
            GizmoInputError: this gizmo has no input with that index.
        """
        if isinstance(inp, bool) or not isinstance(inp, int) or not 0 <= inp < len(self._inputs):
            raise GizmoInputError(f"gizmo '{self.name}' has no input {inp!r} (it has {len(self._inputs)} input(s))")
        return self._inputs[inp]

    def get_inputs(self) -> list[Stream]:
        """Get all input streams of this gizmo.

        Returns:
            The input streams, in index order (a new list; the streams are shared).
        """
        return list(self._inputs)

    def connect_to(self, other_gizmo: Gizmo, inp: int | Stream = 0) -> Gizmo:
        """Feed one input of this gizmo from another gizmo's output.

        Args:
            other_gizmo: the gizmo whose results go into this gizmo's input.
            inp: index of this gizmo's input, or the input ``Stream`` itself. Defaults to 0.

        Returns:
            This gizmo, to allow chaining.

        Raises:
            TypeError: ``other_gizmo`` is not a Gizmo.
            GizmoInputError: this gizmo has no such input.
        """
        if not isinstance(other_gizmo, Gizmo):
            raise TypeError(f"gizmo '{self.name}' can only be connected to a Gizmo, not {other_gizmo!r}")
        stream = self._resolve_input(inp)
        if not any(out is stream for out in other_gizmo._output_refs):
            other_gizmo._output_refs.append(stream)
        self._connected_gizmos[other_gizmo] = None
        other_gizmo._connected_gizmos[self] = None
        log.debug("gizmo '%s' connected to input %r of gizmo '%s'", other_gizmo.name, inp, self.name)
        return self

    def get_connected(self) -> set[Gizmo]:
        """Gather every gizmo connected to this one, directly or not, in either direction.

        Returns:
            The set of connected gizmos, this gizmo included.
        """
        return set(connected_gizmos(self))

    def send_result(self, data: Any) -> None:
        """Send a result to every connected output stream (each gets the same object).

        The result's ``StreamMeta`` (if it has one) is stamped in place with this gizmo's
        name and the time, under ``tag_timing`` (see ``get_timing_info``), and the
        ``watchdog``, if any, ticks. A put into a full, non-dropping stream blocks until
        there is room, or until this gizmo is aborted: then the item is discarded (see the
        module docstring).

        Args:
            data: the result, usually a ``StreamData``. ``None`` (``Stream._poison``)
                closes all outputs instead (and is not counted in ``result_cnt``).
        """
        if data is Stream._poison:
            for out in self._output_refs:
                if not self._deliver(out, Stream._poison):
                    out.close()  # aborted while the stream was full: force the pill in
            return
        self.result_cnt += 1
        if self.watchdog is not None:
            self.watchdog.tick()
        meta = getattr(data, "meta", None)
        if isinstance(meta, StreamMeta):
            meta.append({self.key_gizmo: self.name, self.key_timestamp: time.time()}, tag_timing)
        for out in self._output_refs:
            if not self._deliver(out, data):
                log.debug("gizmo '%s' aborted: result dropped at a full stream", self.name)

    def __getitem__(self, index: int) -> tuple[Gizmo, Stream]:
        """Select an input for ``>>``: ``source >> target[1]`` feeds input 1 of ``target``.

        Args:
            index: the input index on this gizmo.

        Returns:
            A ``(this gizmo, its input stream at index)`` tuple.

        Raises:
            GizmoInputError: this gizmo has no input with that index.
        """
        return (self, self.get_input(index))

    def __rshift__(self, other_gizmo: Gizmo | tuple[Gizmo, int | Stream] | None) -> Gizmo:
        """Connect this gizmo's output to another gizmo: ``source >> target``.

        Args:
            other_gizmo: a Gizmo (its input 0 is used), or a ``(gizmo, inp)`` tuple where
                ``inp`` is an input index or input Stream of that gizmo, or None (nothing is
                connected, so optional stages can be left out of a chain).

        Returns:
            The target gizmo, so ``a >> b >> c`` chains; this gizmo for None.

        Raises:
            TypeError: ``other_gizmo`` is neither a Gizmo nor a ``(gizmo, inp)`` tuple.
            GizmoInputError: the target gizmo has no such input.
        """
        if other_gizmo is None:
            return self
        if isinstance(other_gizmo, tuple):
            if len(other_gizmo) != 2:
                raise TypeError(f"expected a (gizmo, input) tuple, got {other_gizmo!r}")
            target, inp = other_gizmo
        else:
            target, inp = other_gizmo, 0
        if not isinstance(target, Gizmo):
            raise TypeError(f"cannot connect gizmo '{self.name}' to {target!r}: not a Gizmo")
        target.connect_to(self, inp)
        return target

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} '{self.name}': {len(self._inputs)} input(s), {len(self._output_refs)} output(s)>"
        )

    def _resolve_input(self, inp: int | Stream) -> Stream:
        """Turn an input index or Stream into one of this gizmo's input streams."""
        if isinstance(inp, Stream):
            if not any(own is inp for own in self._inputs):
                raise GizmoInputError(f"the stream given is not an input of gizmo '{self.name}'")
            return inp
        return self.get_input(inp)

    def _deliver(self, out: Stream, item: Any) -> bool:
        """Put an item into a stream; False if given up on because this gizmo was aborted."""
        if out.allow_drop or out.maxsize <= 0:
            out.put(item)  # cannot block
            return True
        while True:
            try:
                out.put(item, timeout=PUT_POLL_INTERVAL_S)
                return True
            except queue.Full:
                if self._abort:
                    return False


def connected_gizmos(gizmo: Gizmo) -> list[Gizmo]:
    """List every gizmo connected to ``gizmo``, itself first, breadth-first in connection order.

    Unlike ``Gizmo.get_connected()`` the order is deterministic, which keeps a composition's
    reports (``get_current_queue_sizes()``…) in a stable order.

    Args:
        gizmo: where to start.

    Returns:
        The connected gizmos, without duplicates.
    """
    found: dict[Gizmo, None] = {gizmo: None}
    frontier: list[Gizmo] = [gizmo]
    while frontier:
        nxt: list[Gizmo] = []
        for current in frontier:
            for neighbour in current._connected_gizmos:
                if neighbour not in found:
                    found[neighbour] = None
                    nxt.append(neighbour)
        frontier = nxt
    return list(found)


def _make_input(spec: InputSpec) -> Stream:
    """Build one input stream from a ``(maxsize, allow_drop)`` or ``(maxsize,)`` tuple."""
    if not isinstance(spec, (tuple, list)) or not 1 <= len(spec) <= 2:
        raise StreamConfigError(f"an input stream size must be a (maxsize, allow_drop) tuple, not {spec!r}")
    maxsize = spec[0]
    allow_drop = bool(spec[1]) if len(spec) == 2 else False
    if isinstance(maxsize, bool) or not isinstance(maxsize, int):
        raise StreamConfigError(f"an input stream maxsize must be an int, not {maxsize!r}")
    return Stream(maxsize, allow_drop)
