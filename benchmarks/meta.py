"""Machine description and software versions recorded with every result file."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy
import pyarrow
import zmq

import dora_zmq

REPO = Path(__file__).resolve().parent.parent


def machine_info() -> dict[str, Any]:
    """CPU, memory, kernel and load: what makes figures comparable (or not)."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "loadavg_at_start": os.getloadavg(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["mem_total_kB"] = int(line.split()[1])
                break
    except OSError:
        pass
    return info


def cpu_busy(seconds: float = 0.5) -> float:
    """Fraction of all CPUs busy over ``seconds`` (others' load makes figures noisy); NaN if unknown."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields), idle

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return float("nan")
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def versions() -> dict[str, Any]:
    """Versions of everything on the measured path, and the repository's commit."""
    return {
        "python": sys.version.split()[0],
        "dora_zmq": dora_zmq.__version__,
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "pyarrow": pyarrow.__version__,
        "numpy": numpy.__version__,
        "git": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def source_fingerprint() -> str:
    """A digest of the code a run measures: every ``.py`` file of ``dora_zmq/`` and ``benchmarks/``.

    Taken at the start and at the end of a run: nodes import the code when they start, so an
    edit during a run measures a mix (``git_dirty`` alone does not tell).
    """
    import hashlib

    digest = hashlib.sha256()
    for folder in ("dora_zmq", "benchmarks"):
        for path in sorted((REPO / folder).rglob("*.py")):
            try:
                digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
            except OSError:
                digest.update(b"unreadable " + str(path).encode())
    return digest.hexdigest()[:16]


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], check=False, cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
