"""CPU and memory of a daemon's node processes, sampled for ``dora-zmq top``.

Owned by the daemon's event-loop thread (the only caller). psutil's ``cpu_percent`` measures
since the previous call on the same ``Process`` object, so one object is kept per pid: the
first sample of a new process reads 0 %, the next ones the share of a core since the last.
psutil is imported at the first sample (a second after the first node started), not with the
daemon: ``dora-zmq run`` starts its nodes sooner.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import _control as ctl

if TYPE_CHECKING:
    import psutil

__all__ = ["ResourceSampler", "SampledProcess"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SampledProcess:
    """A node process to sample: who it is, and how often it was started."""

    dataflow_id: str
    node: str
    pid: int
    restarts: int = 0


class ResourceSampler:
    """Turns live node processes into ``ProcessSample`` records (CPU since last call, RSS)."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def sample(self, procs: list[SampledProcess]) -> list[ctl.ProcessSample]:
        """One record per process still alive; forgets processes no longer listed."""
        if not procs and not self._procs:
            return []
        import psutil

        samples = []
        live = {p.pid for p in procs}
        for pid in [pid for pid in self._procs if pid not in live]:
            del self._procs[pid]
        for p in procs:
            try:
                proc = self._procs.get(p.pid)
                if proc is None:
                    proc = self._procs[p.pid] = psutil.Process(p.pid)
                with proc.oneshot():
                    cpu = proc.cpu_percent(None)
                    rss = proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess) as exc:
                log.debug("node %s of dataflow %s: no resource sample (%s)", p.node, p.dataflow_id, exc)
                self._procs.pop(p.pid, None)
                continue
            samples.append(ctl.ProcessSample(p.dataflow_id, p.node, p.pid, float(cpu), int(rss), p.restarts))
        return samples
