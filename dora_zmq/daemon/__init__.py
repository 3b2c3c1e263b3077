"""The per-machine daemon: spawns, watches and stops the nodes of that machine."""

from __future__ import annotations

from ._daemon import Daemon
from ._rundir import sweep_stale_run_dirs

__all__ = ["Daemon", "sweep_stale_run_dirs"]
