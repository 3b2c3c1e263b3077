"""Start benchmark processes and always reap them, whatever happens.

Every process is started in its own session (process group) with a unique tag in its
environment, which its descendants inherit (dataflow daemons pass their environment on to
nodes). On success, timeout or error alike, :func:`run_group` ends by terminating each group
(SIGTERM, then SIGKILL) and by killing anything still alive that carries the tag, so nothing
is left behind, not even nodes that run in sessions of their own.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dora_zmq.testing import TAG_ENV, kill_tagged

log = logging.getLogger(__name__)

_TERM_GRACE_S = 5.0


@dataclass(frozen=True)
class GroupResult:
    """How a group of processes ended."""

    returncodes: list[int | None]  # None: killed after the deadline
    seconds: float
    logs: list[Path]
    leaked: list[str]  # command lines of tagged processes that had to be killed

    @property
    def ok(self) -> bool:
        return all(rc == 0 for rc in self.returncodes)

    def tail(self, extra: Sequence[Path] = (), lines: int = 15) -> str:
        """The end of every log (and of ``extra`` files), for an error message."""
        out = []
        for path in [*self.logs, *extra]:
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            if text:
                out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)


def run_group(
    cmds: Sequence[Sequence[str]], env: dict[str, str], cwd: Path, timeout_s: float, names: Sequence[str] | None = None
) -> GroupResult:
    """Run ``cmds`` concurrently (started in order) until all exit or ``timeout_s`` passes.

    stdout and stderr of each go to ``cwd/<name>.log``. The processes and all their
    descendants are gone when this returns (or raises).
    """
    tag = uuid.uuid4().hex
    full_env = dict(env, **{TAG_ENV: tag, "PYTHONUNBUFFERED": "1"})
    names = list(names or [f"proc{i}" for i in range(len(cmds))])
    logs = [cwd / f"{n}.log" for n in names]
    procs: list[subprocess.Popen[bytes]] = []
    start = time.monotonic()
    leaked: list[str] = []
    try:
        for cmd, path in zip(cmds, logs):
            with open(path, "wb") as logf:
                procs.append(
                    subprocess.Popen(
                        list(cmd), env=full_env, cwd=str(cwd), stdin=subprocess.DEVNULL,
                        stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
                    )
                )
        _wait_all(procs, start + timeout_s)
    finally:
        codes = [p.poll() for p in procs]
        _stop_groups([p for p in procs if p.poll() is None])
        leaked = kill_tagged(tag)
        if leaked:
            log.warning("killed %d leftover process(es): %s", len(leaked), "; ".join(leaked))
    return GroupResult(codes, time.monotonic() - start, logs, leaked)


def _wait_all(procs: list[subprocess.Popen[bytes]], deadline: float) -> None:
    """Wait until all exited, one failed (the others would only wait for it), or the deadline."""
    while time.monotonic() < deadline:
        codes = [p.poll() for p in procs]
        if all(c is not None for c in codes):
            return
        if any(c not in (None, 0) for c in codes):
            log.error("a process failed (exit codes %s); stopping the others", codes)
            return
        time.sleep(0.05)
    log.error("timeout: still running %s", [" ".join(map(str, p.args)) for p in procs if p.poll() is None])  # type: ignore[arg-type]


def _stop_groups(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process group, wait, then SIGKILL what is left; reap all."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + _TERM_GRACE_S
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        if all(p.poll() is not None for p in procs):
            return
