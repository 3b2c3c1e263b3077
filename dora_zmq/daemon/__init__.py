"""The per-machine daemon: spawns, watches and stops the nodes of that machine."""

from __future__ import annotations

from ._daemon import Daemon

__all__ = ["Daemon"]
