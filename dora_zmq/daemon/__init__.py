"""The per-machine daemon: spawns, watches and stops the nodes of that machine."""

from __future__ import annotations

from ._build import build_commands, run_builds
from ._daemon import EXIT_BOUND_S, SHUTDOWN_GRACE_S, Daemon
from ._rundir import sweep_stale_run_dirs

__all__ = ["EXIT_BOUND_S", "SHUTDOWN_GRACE_S", "Daemon", "build_commands", "run_builds", "sweep_stale_run_dirs"]
