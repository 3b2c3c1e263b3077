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
from collections.abc import Collection
from dataclasses import dataclass, field

from ..descriptor import Dataflow, OutputRef, RestartSpec
from ._supervisor import ExitInfo

__all__ = ["DEFAULT_MAX_RESTARTS", "RestartBook", "RestartDecision", "RestartState"]

log = logging.getLogger(__name__)

DEFAULT_MAX_RESTARTS = 10
_MAX_DOUBLINGS = 16  # as dora: 2**16 times the base delay at most, before max_restart_delay


@dataclass(frozen=True, slots=True)
class RestartDecision:
    """What to do with a node that exited: restart after ``delay_s``, or let it end (``why``)."""

    restart: bool
    delay_s: float = 0.0
    why: str = ""
    gave_up: bool = False  # the restarts allowed are used up


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
            why = f"gave up after {self.limit} restart(s){within} (max_restarts)"
            return RestartDecision(False, why=why, gave_up=True)
        self.count += 1
        self.due_at = now + self._delay()
        return RestartDecision(True, self._delay())

    def _delay(self) -> float:
        base = self.spec.delay_s
        if not base:
            return 0.0
        delay = base * 2.0 ** min(self.window_count - 1, _MAX_DOUBLINGS)
        return min(delay, self.spec.max_delay_s) if self.spec.max_delay_s is not None else delay


@dataclass(slots=True)
class RestartBook:
    """The restarts of one dataflow's nodes on one daemon: records, and exits awaiting a restart."""

    descriptor: Dataflow
    states: dict[str, RestartState] = field(default_factory=dict)
    pending: dict[str, ExitInfo] = field(default_factory=dict)  # reported if the restart is called off
    # Nodes that said, closing, that all their inputs had closed: sooner than the upstream
    # exits the coordinator relays, which may arrive after the node's own exit.
    inputs_closed: set[str] = field(default_factory=set)

    def count(self, node: str) -> int:
        """How many times ``node`` was restarted."""
        state = self.states.get(node)
        return state.count if state else 0

    def decide(
        self, node: str, info: ExitInfo, now: float, *, stopping: bool, exited: Collection[str]
    ) -> RestartDecision:
        """Apply ``node``'s policy to its exit (``exited``: upstream nodes gone for good).

        A restart is scheduled (see :meth:`due`); a node that gave up has it in ``info.reason``.
        """
        spec = self.descriptor.node(node)
        if spec.restart.policy == "never":
            return RestartDecision(False)
        state = self.states.setdefault(node, RestartState(spec.restart))
        closed = node in self.inputs_closed or self._inputs_closed(node, exited)
        decision = state.decide(info.failed, now, stopping=stopping, inputs_closed=closed)
        if decision.restart:
            self.pending[node] = info
        elif decision.gave_up and info.failed:
            info.reason = f"{info.reason}; {decision.why}" if info.reason else decision.why
        return decision

    def due(self, now: float) -> list[str]:
        """Nodes whose restart time has come (taken off the schedule)."""
        ready = [n for n in self.pending if (at := self.states[n].due_at) is not None and at <= now]
        for node in ready:
            del self.pending[node]
            self.states[node].due_at = None
            self.inputs_closed.discard(node)
        return ready

    def call_off(self) -> list[tuple[str, ExitInfo]]:
        """Cancel every scheduled restart; their last exits, to report."""
        called_off = list(self.pending.items())
        self.pending.clear()
        return called_off

    def _inputs_closed(self, node: str, exited: Collection[str]) -> bool:
        """True when the node has inputs and every one of them is closed for good."""
        spec = self.descriptor.node(node)
        if not spec.inputs or any(not isinstance(i.source, OutputRef) for i in spec.inputs.values()):
            return False  # a source, or a timer that never closes
        return self.descriptor.upstream_nodes(node) <= set(exited)
