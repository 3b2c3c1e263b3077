"""Start benchmark processes and always reap them, whatever happens.

Every process is started in its own session (process group) with a unique tag in its
environment, which its descendants inherit (dataflow daemons pass their environment on to
nodes). On success, timeout or error alike, :func:`run_group` ends by terminating each group
(SIGTERM, then SIGKILL) and by killing anything still alive that carries the tag, so nothing
is left behind, not even nodes that run in sessions of their own.

*Services* (a coordinator, daemons) are long-lived processes started before the jobs, each
awaited until its log shows it is ready; they are stopped, last started first, once the jobs
have ended. The jobs decide the outcome; a service that exits early ends the group as failed.
"""

from __future__ import annotations

import logging
import os
import re
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
_READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Service:
    """A background process of a group; ``ready`` is a regex awaited in its log (or None)."""

    cmd: Sequence[str]
    name: str
    ready: str | None = None


@dataclass(frozen=True)
class GroupResult:
    """How a group of processes ended."""

    returncodes: list[int | None]  # the jobs'; None: killed after the deadline (or never started)
    seconds: float
    logs: list[Path]
    leaked: list[str]  # command lines of tagged processes that had to be killed
    problem: str = ""  # a service that never got ready or exited early

    @property
    def ok(self) -> bool:
        return not self.problem and all(rc == 0 for rc in self.returncodes)

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
    cmds: Sequence[Sequence[str]],
    env: dict[str, str],
    cwd: Path,
    timeout_s: float,
    names: Sequence[str] | None = None,
    services: Sequence[Service] = (),
) -> GroupResult:
    """Run ``cmds`` concurrently (started in order) until all exit or ``timeout_s`` passes.

    ``services`` are started first, one by one, each awaited until ready; they run until the
    jobs have ended. stdout and stderr of each process go to ``cwd/<name>.log``. The processes
    and all their descendants are gone when this returns (or raises).
    """
    tag = uuid.uuid4().hex
    full_env = dict(env, **{TAG_ENV: tag, "PYTHONUNBUFFERED": "1"})
    names = list(names or [f"proc{i}" for i in range(len(cmds))])
    svc_logs = [cwd / f"{s.name}.log" for s in services]
    logs = [cwd / f"{n}.log" for n in names]
    svcs: list[subprocess.Popen[bytes]] = []
    procs: list[subprocess.Popen[bytes]] = []
    start = time.monotonic()
    deadline = start + timeout_s
    leaked: list[str] = []
    problem = ""
    try:
        for svc, path in zip(services, svc_logs):
            svcs.append(_spawn(svc.cmd, full_env, cwd, path))
            if svc.ready:
                problem = _await_ready(svcs[-1], svc, path, min(deadline, time.monotonic() + _READY_TIMEOUT_S))
                if problem:
                    break
        if not problem:
            for cmd, path in zip(cmds, logs):
                procs.append(_spawn(cmd, full_env, cwd, path))
            problem = _wait_all(procs, deadline, dict(zip((s.name for s in services), svcs)))
    finally:
        codes = [p.poll() for p in procs] + [None] * (len(cmds) - len(procs))
        _stop_groups([p for p in procs if p.poll() is None])
        for p in reversed(svcs):  # daemons before the coordinator they report to
            _stop_groups([p] if p.poll() is None else [])
        leaked = kill_tagged(tag)
        if leaked:
            log.warning("killed %d leftover process(es): %s", len(leaked), "; ".join(leaked))
    return GroupResult(codes, time.monotonic() - start, svc_logs + logs, leaked, problem)


def _spawn(cmd: Sequence[str], env: dict[str, str], cwd: Path, path: Path) -> subprocess.Popen[bytes]:
    with open(path, "wb") as logf:
        return subprocess.Popen(
            list(cmd),
            env=env,
            cwd=str(cwd),
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _await_ready(proc: subprocess.Popen[bytes], svc: Service, path: Path, deadline: float) -> str:
    """Wait for ``svc.ready`` in its log; returns "" when seen, else what went wrong."""
    assert svc.ready is not None
    pattern = re.compile(svc.ready, re.MULTILINE)
    while True:
        try:
            if pattern.search(path.read_text(errors="replace")):
                return ""
        except OSError:
            pass
        if proc.poll() is not None:
            return f"service {svc.name} exited with {proc.returncode} before it was ready"
        if time.monotonic() > deadline:
            return f"service {svc.name} not ready (no line matching {svc.ready!r}) in time"
        time.sleep(0.05)


def _wait_all(
    procs: list[subprocess.Popen[bytes]], deadline: float, services: dict[str, subprocess.Popen[bytes]]
) -> str:
    """Wait until all exited, one failed (the others would only wait for it), a service
    exited, or the deadline; returns "" or the service problem."""
    while time.monotonic() < deadline:
        codes = [p.poll() for p in procs]
        if all(c is not None for c in codes):
            return ""
        if any(c not in (None, 0) for c in codes):
            log.error("a process failed (exit codes %s); stopping the others", codes)
            return ""
        for name, svc in services.items():
            if svc.poll() is not None:
                log.error("service %s exited with %s while the jobs ran; stopping them", name, svc.returncode)
                return f"service {name} exited with {svc.returncode} while the jobs ran"
        time.sleep(0.05)
    log.error("timeout: still running %s", [" ".join(map(str, p.args)) for p in procs if p.poll() is None])  # type: ignore[arg-type]
    return ""


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
