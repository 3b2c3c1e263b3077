"""One dataflow run under the orchestrator's control, for the scale variants that steer it.

:class:`Fleet` starts ``dora-zmq run`` / ``dora run`` (or any command) in its own session with
a unique tag in its environment, follows the nodes' ``events.log`` (see ``scale_node.py``),
sends STOP the way a user does (SIGINT to the run command), records when the command exited
and what CPU the whole tree used (``RUSAGE_CHILDREN`` of this process: the run command and
every node it reaped), and samples its processes with psutil. Leaving the ``with`` block kills
whatever is left (the session's group, then anything carrying the tag).

Threads: one waiter thread per fleet blocks in ``wait()`` on the run command, so the exit time
is taken when the kernel reports it, not at the next poll; everything else is the caller's.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from procs import _stop_groups

from dora_zmq.testing import TAG_ENV, kill_tagged

_POLL_S = 0.01  # the orchestrator's own waits; what is measured comes from the nodes' clocks


@dataclass(frozen=True)
class Event:
    """One line of ``events.log``."""

    node: str
    what: str
    t: int  # perf_counter_ns
    pid: int


class FleetFailed(Exception):
    """The run ended or stalled before what was awaited; the message holds the log's tail."""


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Fleet:
    """A dataflow run: ``with Fleet(cmd, env, workdir) as f: f.await_events(...); f.stop()``."""

    def __init__(self, cmd: Sequence[str], env: dict[str, str], workdir: Path, name: str = "run") -> None:
        self.cmd, self.workdir = list(cmd), workdir
        self.tag = uuid.uuid4().hex
        self.env = dict(env, **{TAG_ENV: self.tag, "PYTHONUNBUFFERED": "1", "SCALE_DIR": str(workdir)})
        self.log = workdir / f"{name}.log"
        self.events_path = workdir / "events.log"
        self.exited = threading.Event()
        self.t_exit = 0
        self.returncode: int | None = None
        self.cpu_s = float("nan")
        self.leaked: list[str] = []

    def __enter__(self) -> Fleet:
        self._cpu0 = _cpu_children()
        with open(self.log, "wb") as logf:
            self.t_run = time.perf_counter_ns()
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=str(self.workdir),
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        threading.Thread(target=self._wait, name="fleet-waiter", daemon=True).start()
        return self

    def _wait(self) -> None:
        self.returncode = self.proc.wait()
        self.t_exit = time.perf_counter_ns()
        self.exited.set()

    def __exit__(self, *exc: object) -> None:
        if not self.exited.is_set():
            _stop_groups([self.proc])
        self.exited.wait(10)
        self.leaked = kill_tagged(self.tag)
        if self.exited.is_set():
            self.cpu_s = _cpu_children() - self._cpu0

    # ---- events ----------------------------------------------------------------------------

    def events(self) -> list[Event]:
        try:
            lines = self.events_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            parts = line.split()
            if len(parts) == 4:
                out.append(Event(parts[0], parts[1], int(parts[2]), int(parts[3])))
        return out

    def await_events(self, done: Callable[[list[Event]], bool], timeout_s: float, what: str) -> list[Event]:
        """Poll the event log until ``done(events)``.

        Raises:
            FleetFailed: the run exited first, or ``timeout_s`` passed.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            evs = self.events()
            if done(evs):
                return evs
            if self.exited.is_set() or time.monotonic() > deadline:
                state = f"exited with {self.returncode}" if self.exited.is_set() else f"not within {timeout_s:.0f} s"
                raise FleetFailed(f"{what}: {state}; {len(evs)} event(s); log {self.log}:\n{self.tail()}")
            time.sleep(_POLL_S)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # ---- stop ------------------------------------------------------------------------------

    def stop(self, timeout_s: float) -> float:
        """SIGINT to the run command (a user's Ctrl-C); seconds until it exited.

        Raises:
            FleetFailed: it did not exit within ``timeout_s``.
        """
        t0 = time.perf_counter_ns()
        self.proc.send_signal(signal.SIGINT)
        return self.wait_exit(timeout_s, t0)

    def wait_exit(self, timeout_s: float, since: int | None = None) -> float:
        """Seconds from ``since`` (default: the start) until the run command exited."""
        if not self.exited.wait(timeout_s):
            raise FleetFailed(f"still running {timeout_s:.0f} s later; log {self.log}:\n{self.tail()}")
        return (self.t_exit - (self.t_run if since is None else since)) / 1e9

    # ---- processes -------------------------------------------------------------------------

    def processes(self) -> list[psutil.Process]:
        """The run command and all its descendants (nodes in sessions of their own included)."""
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []


def sample(procs: list[psutil.Process], full: bool = False) -> dict[int, dict[str, Any]]:
    """Per pid: name, cmdline tail, rss (and uss/pss with ``full``), fds, threads; gone ones skipped."""
    out: dict[int, dict[str, Any]] = {}
    for p in procs:
        try:
            with p.oneshot():
                d: dict[str, Any] = {"cmd": " ".join(os.path.basename(c) for c in p.cmdline()[:4])}
                if full:
                    m = p.memory_full_info()
                    d.update(rss=m.rss, uss=m.uss, pss=getattr(m, "pss", None))
                else:
                    d["rss"] = p.memory_info().rss
                d["fds"] = p.num_fds()
                d["threads"] = p.num_threads()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        out[p.pid] = d
    return out
