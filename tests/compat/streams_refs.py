"""Where the degirum_tools references live, and how to run a streams program on each implementation.

``make compat-venv`` installs the newest pinned degirum_tools into the reference venv and
older releases beside it, each in ``degirum_tools-VERSION/`` (``pip install --target``,
without dependencies: they share the venv's). An older release runs with its folder first
on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .conftest import REPO, compat_venv

HERE = Path(__file__).resolve().parent
LATEST = "latest"
OLDER = ("0.25.1",)
"""The older degirum_tools releases the tests compare with (keep in step with the Makefile)."""
RUN_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Implementation:
    """One streams implementation: the Python to run and the extra environment it needs."""

    label: str
    python: Path
    module: str
    env: dict[str, str] = field(default_factory=dict)

    def run(self, script: Path, *args: str) -> subprocess.Popen[str]:
        """Start ``script`` under this implementation (stdout/stderr piped, text)."""
        env = {**os.environ, **self.env}
        return subprocess.Popen(
            [str(self.python), str(script), *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def ours() -> Implementation:
    """dora_zmq.streams, in the Python running the tests."""
    return Implementation("dora_zmq", Path(sys.executable), "dora_zmq.streams")


def reference(label: str) -> Implementation | None:
    """degirum_tools.streams at ``label`` (``LATEST`` or an older version), or None if not installed."""
    venv = compat_venv().absolute()  # the programs run in the repository root, whatever the tests' cwd
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    if label == LATEST:
        return Implementation(f"degirum_tools {label}", python, "degirum_tools.streams")
    folder = venv / f"degirum_tools-{label}"
    if not folder.is_dir():
        return None
    return Implementation(f"degirum_tools {label}", python, "degirum_tools.streams", {"PYTHONPATH": str(folder)})


def finish(proc: subprocess.Popen[str], what: str) -> str:
    """Wait for a started program (killing it after ``RUN_TIMEOUT_S``) and return its stdout."""
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"{what} did not finish in {RUN_TIMEOUT_S} s; stderr:\n{err[-3000:]}") from None
    assert proc.returncode == 0, f"{what} exited {proc.returncode}; stderr:\n{err[-3000:]}"
    return out


def run_cases(impls: list[Implementation]) -> dict[str, dict[str, Any]]:
    """Run every case of streams_cases.py on each implementation, all at once; label -> case -> summary."""
    driver = HERE / "streams_driver.py"
    procs = {impl.label: impl.run(driver, impl.module) for impl in impls}
    return {label: json.loads(finish(proc, f"{label}: streams_driver.py")) for label, proc in procs.items()}
