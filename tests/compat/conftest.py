"""Differential tests: the same program on the reference implementation and on dora_zmq.

The references (dora-rs 1.1.0 and degirum_tools) live in their own venv, made by
``make compat-venv`` (``.venv-compat`` at the repository root, or ``$DORA_ZMQ_COMPAT_VENV``),
so the main install stays lean. Without it these tests skip, saying how to get it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def compat_venv() -> Path:
    """The reference venv's folder (it may not exist)."""
    return Path(os.environ.get("DORA_ZMQ_COMPAT_VENV", REPO / ".venv-compat"))


@pytest.fixture(scope="session")
def reference_python() -> Path:
    """The Python of the reference venv (dora-rs, dora-rs-cli and degirum_tools installed)."""
    python = compat_venv() / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no reference venv at {compat_venv()}: run `make compat-venv` (or `make compat`)")
    return python
