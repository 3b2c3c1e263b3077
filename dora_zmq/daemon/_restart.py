"""Whether and when a node that exited is started again: its ``restart_policy`` at work.

The rules are dora-rs 1.1's: ``on-failure`` restarts after a non-zero exit or a signal,
``always`` after any exit; no restart once the dataflow is stopping or every input of the
node has closed; ``max_restarts`` restarts per ``restart_window`` (or in all); a
``restart_delay`` that doubles with each restart in the window, capped by
``max_restart_delay``. One difference: without ``max_restarts`` in the YAML, dora restarts
without end; here a node stops being restarted after :data:`DEFAULT_MAX_RESTARTS`, so a crash
loop ends and is reported (``max_restarts: 0`` asks for dora's unlimited).

Threading: only the daemon's event loop thread touches these records.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..descriptor import RestartSpec

__all__ = ["DEFAULT_MAX_RESTARTS", "RestartDecision", "RestartState"]

log = logging.getLogger(__name__)

DEFAULT_MAX_RESTARTS = 10
_MAX_DOUBLINGS = 16  # as dora: 2**16 times the base delay at most, before max_restart_delay


@dataclass(frozen=True, slots=True)
class RestartDecision:
    """What to do with a node that exited: restart after ``delay_s``, or let it end (``why``)."""

    restart: bool
    delay_s: float = 0.0
    why: str = ""


@dataclass(slots=True)
class RestartState:
    """The restart record of one node of one dataflow."""

    spec: RestartSpec
    count: int = 0  # restarts so far: the restarted process's ``restart_count()``
    window_start: float = 0.0
    window_count: int = 0
    due_at: float | None = None  # a restart is scheduled at this monotonic time

    @property
    def limit(self) -> int:
        """Restarts allowed per window (0: unlimited)."""
        return DEFAULT_MAX_RESTARTS if self.spec.max_restarts is None else self.spec.max_restarts

    def decide(self, failed: bool, now: float, *, stopping: bool, inputs_closed: bool) -> RestartDecision:
        """Whether the node that just exited (``failed`` or not) is started again, and when."""
        policy = self.spec.policy
        if policy == "never" or (policy == "on-failure" and not failed):
            return RestartDecision(False)
        if stopping:
            return RestartDecision(False, why="the dataflow is stopping")
        if inputs_closed:
            return RestartDecision(False, why="all its inputs are closed")
        if self.spec.window_s is not None and now - self.window_start > self.spec.window_s:
            self.window_count = 0
        if self.window_count == 0:
            self.window_start = now
        self.window_count += 1
        if self.limit and self.window_count > self.limit:
            within = f" within {self.spec.window_s:g} s" if self.spec.window_s is not None else ""
            return RestartDecision(False, why=f"gave up after {self.limit} restart(s){within} (max_restarts)")
        self.count += 1
        return RestartDecision(True, self._delay())

    def _delay(self) -> float:
        base = self.spec.delay_s
        if not base:
            return 0.0
        delay = base * 2.0 ** min(self.window_count - 1, _MAX_DOUBLINGS)
        return min(delay, self.spec.max_delay_s) if self.spec.max_delay_s is not None else delay
