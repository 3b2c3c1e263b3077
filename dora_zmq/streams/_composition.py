"""``Composition``: runs a set of connected gizmos, one thread each, and owns those threads.

Lifecycle::

    start() ─────────────────────────────────────► joined (errors raised)
    start(wait=False) / with ──► running ──► wait() / stop() / __exit__ ──► joined (errors raised)

* ``start()`` launches one non-daemon thread per gizmo (none for a gizmo whose ``run()``
  is the empty default) and, like DeGirum's toolkit, waits for the end by default:
  ``start(wait=False)`` returns at once. Gizmos connected to a member after it was added
  are picked up at ``start()``: a connected gizmo left out would never drain its input and
  would block its producer forever.
* When a gizmo's ``run()`` returns, normally or by raising, its outputs are closed, so the
  end of a stream ripples down a chain gizmo by gizmo.
* When a gizmo raises, the whole composition is stopped (``request_stop()``), and
  ``wait()`` raises one ``CompositionError`` listing every failed gizmo with its traceback;
  it raises it again on every later ``wait()`` or ``stop()`` until the next ``start()``.
* ``request_stop()`` never blocks: it aborts every gizmo, empties every input stream and
  closes it. A gizmo blocked on ``get()`` gets the pill; one blocked on a put into a full
  stream sees its abort flag within ``PUT_POLL_INTERVAL_S`` (see ``_gizmo``).
* The owner joins: ``start()``, ``wait()``, ``stop()`` and leaving a ``with`` block join
  every thread, so a composition never leaves a thread behind once one of them has
  returned. A gizmo may call ``wait()`` or ``stop()`` of its own composition: that joins
  the other gizmos (not itself, nor other gizmos waiting the same way).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Iterable
from types import TracebackType
from typing import TypeVar

from ._errors import CompositionError, GizmoFailure
from ._gizmo import Gizmo, connected_gizmos, has_empty_run
from ._stream import Stream

__all__ = ["Composition"]

log = logging.getLogger(__name__)

AnyGizmo = TypeVar("AnyGizmo", bound=Gizmo)

_GIZMO_JOIN_POLL_S = 0.05
"""How often a gizmo waiting for its own composition re-checks who else is waiting."""


class Composition:
    """Orchestrates and runs a set of connected gizmos.

    Usage: add gizmos (``add()``, calling the composition, or the constructor), connect
    them with ``connect_to()`` or ``>>``, then ``start()``, which runs them to the end —
    or ``start(wait=False)`` and later ``wait()`` or ``stop()``, or use the composition as a
    context manager, which starts it and waits on exit.

    Example:
        >>> src = IteratorSourceGizmo(range(3))
        >>> sink = SinkGizmo()
        >>> Composition(src >> sink).start()
        >>> [item.data for item in sink()]
        [0, 1, 2]

    Args:
        *gizmos: gizmos, or iterables of gizmos, to add; each comes with every gizmo
            connected to it (directly or not).

    Raises:
        TypeError: an argument is neither a Gizmo nor an iterable of Gizmos.
        CompositionError: a gizmo given requires meta tags (``require_tags()``) that no
            gizmo connected to it provides (``get_tags()``).
    """

    def __init__(self, *gizmos: Gizmo | Iterable[Gizmo]) -> None:
        self._gizmos: list[Gizmo] = []
        self._threads: list[threading.Thread] = []
        self._running = False
        self._failures: dict[Gizmo, GizmoFailure] = {}
        self._saved_allow_drop: list[tuple[Stream, bool]] = []
        self._join_lock = threading.Lock()
        self._waiting_gizmos: set[threading.Thread] = set()  # gizmo threads inside wait()
        for item in gizmos:
            group = [item] if isinstance(item, Gizmo) else _as_gizmo_list(item)
            for gizmo in group:
                connected = connected_gizmos(gizmo)
                _check_required_tags(gizmo, connected)
                for member in connected:
                    self._include(member)

    @property
    def gizmos(self) -> list[Gizmo]:
        """The gizmos of this composition, in the order they were added (a new list)."""
        return list(self._gizmos)

    def add(self, gizmo: AnyGizmo) -> AnyGizmo:
        """Add one gizmo to this composition (adding it twice is harmless).

        Args:
            gizmo: the gizmo to add.

        Returns:
            The same gizmo, so ``src = c.add(MySource())`` reads naturally.

        Raises:
            TypeError: ``gizmo`` is not a Gizmo.
            CompositionError: the composition is running.
        """
        if not isinstance(gizmo, Gizmo):
            raise TypeError(f"only a Gizmo can be added to a composition, not {gizmo!r}")
        if self._running:
            raise CompositionError(f"cannot add gizmo '{gizmo.name}' to a running composition")
        self._include(gizmo)
        return gizmo

    def __call__(self, gizmo: AnyGizmo) -> AnyGizmo:
        """Add a gizmo to this composition; the same as ``add(gizmo)``.

        Args:
            gizmo: the gizmo to add.

        Returns:
            The same gizmo.
        """
        return self.add(gizmo)

    def start(self, *, wait: bool = True, detect_bottlenecks: bool = False) -> None:
        """Start every gizmo's ``run()`` in a thread of its own, and wait for the end by default.

        Args:
            wait: wait until every gizmo has finished and raise their errors, as ``wait()``
                does (the default; interrupted by Ctrl-C, it stops the gizmos first); False
                returns at once: call ``wait()`` or ``stop()`` later.
            detect_bottlenecks: switch every input stream to drop-oldest for this run, so a
                slow gizmo shows up as drops in ``get_bottlenecks()`` instead of stalling
                its producers. Only bounded streams (maxsize > 0) can drop. ``wait()``
                restores each stream's own setting.

        Raises:
            CompositionError: the composition is already running, a thread could not start,
                or (with ``wait``) gizmos raised.
        """
        if self._running:
            raise CompositionError("composition already started")
        for gizmo in list(self._gizmos):
            for member in connected_gizmos(gizmo):
                if member not in self._gizmos:
                    log.debug("gizmo '%s' joins the composition: connected to '%s'", member.name, gizmo.name)
                    self._include(member)
        self._failures = {}
        if detect_bottlenecks:
            self._saved_allow_drop = [(s, s.allow_drop) for g in self._gizmos for s in g.get_inputs()]
            for stream, _ in self._saved_allow_drop:
                stream.allow_drop = True
        for gizmo in self._gizmos:
            for stream in gizmo.get_inputs():
                stream.abandon(False)  # every gizmo reads its inputs again in a new run
            gizmo.abort(False)
            gizmo.result_cnt = 0
            gizmo.error = None
        self._threads = [
            threading.Thread(target=self._run_gizmo, args=(g,), name=f"gizmo-{g.name}", daemon=False)
            for g in self._gizmos
            if not has_empty_run(g)
        ]
        self._running = True
        try:
            self._launch_threads()
            log.debug("composition started: %d gizmo(s)", len(self._threads))
            if wait:
                self.wait()
        except CompositionError:
            raise
        except BaseException:  # KeyboardInterrupt & co: leave no gizmo thread running behind
            self._stop_interrupted()
            raise

    def _stop_interrupted(self) -> None:
        """Stop and join the gizmos after ``start()`` was interrupted (Ctrl-C), even mid-launch."""
        log.info("composition interrupted: stopping its gizmos")
        self.request_stop()
        for thread in self._threads:
            if thread.ident is not None:  # started: an interrupted launch leaves some unstarted
                thread.join()
        self._threads = []
        self._running = False
        self._restore_allow_drop()

    def request_stop(self) -> None:
        """Ask every gizmo to stop, without waiting; call ``wait()`` to join the threads.

        Sets every gizmo's abort flag, empties its input streams, then closes them with a
        poison pill, which unblocks a gizmo waiting in ``get()``. A gizmo blocked on a put
        into a full stream gives up within ``PUT_POLL_INTERVAL_S``. Safe to call from any
        thread, any number of times.
        """
        for gizmo in self._gizmos:
            gizmo.abort()
        streams = [s for g in self._gizmos for s in g.get_inputs()]
        for stream in streams:
            stream.clear()
        for stream in streams:
            stream.close()

    def wait(self) -> None:
        """Wait until every gizmo thread has finished, join them all, and raise their errors.

        Returns at once if the composition is not running (never started, or waited for
        already); the errors of the last run are raised all the same. Called from one of
        the composition's own gizmos, it joins the other gizmos only (see the module
        docstring) and leaves the final join to the owner.

        Raises:
            CompositionError: gizmos raised in the last run: the message names each failed
                gizmo with its traceback, and ``failures`` holds them.
        """
        current = threading.current_thread()
        threads = list(self._threads)
        if any(t is current for t in threads):
            self._join_from_gizmo(current, threads)
        elif self._running:
            for thread in threads:
                thread.join()
            self._threads = []
            self._running = False
            self._restore_allow_drop()
        failures = [self._failures[g] for g in self._gizmos if g in self._failures]
        if failures:
            names = ", ".join(f"'{f.gizmo}'" for f in failures)
            raise CompositionError(f"{len(failures)} gizmo(s) failed: {names}", failures)

    def stop(self) -> None:
        """Stop the composition: ``request_stop()``, then ``wait()``.

        Raises:
            CompositionError: gizmos raised in the last run (see ``wait()``).
        """
        self.request_stop()
        self.wait()

    def get_bottlenecks(self) -> list[dict[str, int]]:
        """List the gizmos whose input streams dropped items in the last run.

        Meaningful after ``start(detect_bottlenecks=True)``, or with dropping streams.

        Returns:
            One ``{gizmo name: items dropped on all its inputs}`` dict per gizmo that dropped.
        """
        result: list[dict[str, int]] = []
        for gizmo in self._gizmos:
            dropped = sum(s.dropped_cnt for s in gizmo.get_inputs())
            if dropped > 0:
                result.append({gizmo.name: dropped})
        return result

    def get_current_queue_sizes(self) -> list[dict[str, list[int]]]:
        """Snapshot every gizmo's output count and input queue sizes, e.g. to analyse a deadlock.

        Returns:
            One ``{gizmo name: [result_cnt, size of input 0, size of input 1, ...]}`` dict per gizmo.
        """
        return [{g.name: [g.result_cnt] + [s.qsize() for s in g.get_inputs()]} for g in self._gizmos]

    def __enter__(self) -> Composition:
        """Start the composition (unless it is running already) and return it."""
        if not self._running:
            self.start(wait=False)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        """Wait for every gizmo to finish and raise their errors.

        If the ``with`` body raised, the gizmos are stopped first and the body's exception
        propagates; gizmo failures are then logged and added to it as a note.

        Raises:
            CompositionError: gizmos raised (and the body did not).
        """
        if exc_val is None:
            self.wait()
            return
        if not self._running:
            return
        self.request_stop()
        try:
            self.wait()
        except CompositionError as err:
            log.error("while handling %s: %s", type(exc_val).__name__, err)
            add_note = getattr(exc_val, "add_note", None)  # Python >= 3.11
            if add_note is not None:
                add_note(str(err))

    def _include(self, gizmo: Gizmo) -> None:
        """Add a gizmo unless it is a member already, and point it at this composition."""
        if gizmo not in self._gizmos:
            self._gizmos.append(gizmo)
        gizmo.composition = self

    def _launch_threads(self) -> None:
        """Start the prepared threads; if one cannot start, stop and join those that did."""
        for number, thread in enumerate(self._threads):
            try:
                thread.start()
            except RuntimeError as exc:
                self._threads = self._threads[:number]
                self.request_stop()
                for started in self._threads:
                    started.join()
                self._threads = []
                self._running = False
                self._restore_allow_drop()
                raise CompositionError(f"could not start a thread for gizmo {thread.name}") from exc

    def _restore_allow_drop(self) -> None:
        """Give each input stream back the ``allow_drop`` it had before ``detect_bottlenecks``."""
        for stream, allow_drop in self._saved_allow_drop:
            stream.allow_drop = allow_drop
        self._saved_allow_drop = []

    def _join_from_gizmo(self, current: threading.Thread, threads: list[threading.Thread]) -> None:
        """Join every gizmo thread but ``current`` and those waiting too (they would wait for us)."""
        with self._join_lock:
            self._waiting_gizmos.add(current)
        try:
            for thread in threads:
                while thread is not current and thread.is_alive():
                    with self._join_lock:
                        if thread in self._waiting_gizmos:
                            break
                    thread.join(_GIZMO_JOIN_POLL_S)
        finally:
            with self._join_lock:
                self._waiting_gizmos.discard(current)

    def _run_gizmo(self, gizmo: Gizmo) -> None:
        """Thread body: run the gizmo, record a failure and stop all, close its outputs."""
        try:
            try:
                gizmo.start_time_s = time.time()
                gizmo.run()
                gizmo.elapsed_s = time.time() - gizmo.start_time_s
                gizmo.fps = gizmo.result_cnt / gizmo.elapsed_s if gizmo.elapsed_s > 0 else 0.0
            except Exception as exc:  # any error is reported by wait(), with its traceback
                self._failures[gizmo] = GizmoFailure(gizmo.name, exc, traceback.format_exc())
                gizmo.error = exc
                log.error("gizmo '%s' failed: %s: %s", gizmo.name, type(exc).__name__, exc)
                self.request_stop()
        finally:
            gizmo.send_result(Stream._poison)  # the end of this gizmo is the end of its outputs


def _as_gizmo_list(item: object) -> list[Gizmo]:
    """Check that a constructor argument is an iterable of Gizmos, and list them."""
    if not isinstance(item, Iterable) or isinstance(item, (str, bytes)):
        raise TypeError(f"a composition takes gizmos or iterables of gizmos, not {item!r}")
    group = list(item)
    for gizmo in group:
        if not isinstance(gizmo, Gizmo):
            raise TypeError(f"a composition takes gizmos or iterables of gizmos, not {gizmo!r}")
    return group


def _check_required_tags(gizmo: Gizmo, connected: list[Gizmo]) -> None:
    """Refuse a gizmo whose ``require_tags()`` no other connected gizmo's ``get_tags()`` covers."""
    required = {tag for inp in range(len(gizmo.get_inputs())) for tag in gizmo.require_tags(inp)}
    if not required:
        return
    provided = {tag for other in connected if other is not gizmo for tag in other.get_tags()}
    missing = required - provided
    if missing:
        raise CompositionError(
            f"gizmo '{gizmo.name}' requires meta tags {sorted(missing)} that no connected gizmo provides "
            f"(they provide {sorted(provided)})"
        )
