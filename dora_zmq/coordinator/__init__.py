"""The coordinator: dataflow registry and lifecycle, serving the CLI and the daemons."""

from __future__ import annotations

from ._coordinator import DEFAULT_ADDRESS, DEFAULT_PORT, Coordinator

__all__ = ["Coordinator", "DEFAULT_ADDRESS", "DEFAULT_PORT"]
