"""Spawning, watching and stopping node processes: the only place that calls ``Popen``.

Stopping is a bounded ladder, as in dora: STOP event -> grace period -> SIGTERM to the node's
process group -> 2 s -> SIGKILL -> reap. Every node leads its own process group
(``start_new_session``) so that a terminal's Ctrl-C reaches only the CLI, which turns it into
a clean STOP, and so that signalling the group also reaches the node's own children. Each node
also gets ``PR_SET_PDEATHSIG``: if the daemon dies without cleaning up, the kernel kills it.

Why an exec shim sets it, not ``preexec_fn``: the daemon is multi-threaded, and a
``preexec_fn`` runs Python between ``fork`` and ``exec``, where a lock another thread held at
fork time (the import lock, a logging handler's, the allocator's) is never released: the child
can hang before it ever becomes the node (CPython's documentation warns of exactly this).
Instead the child execs a tiny isolated Python (``-I -S``: 10 ms per spawn on a quiet machine,
40-60 ms on a loaded one; a Python node's own imports cost more) that calls ``prctl``
through ctypes, checks that its parent is still the daemon (it might have died before the
call), and execs the node; the setting survives ``execve``.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .._control.contract import KILL_AFTER_TERM_S
from ._logs import LogCapture

__all__ = ["ExitInfo", "NodeProcess", "Supervisor"]

log = logging.getLogger(__name__)

#: How long an exited node's output is still read (it is in the pipe already, unless a child
#: of the node holds the pipe open): bounded, because the daemon's loop waits for it.
_DRAIN_AFTER_EXIT_S = 0.5
# argv: the daemon's pid, then the node's argv. PR_SET_PDEATHSIG is 1; a parent that died
# before prctl would never signal: the getppid check covers that window (exit 137, as if
# killed). A program that cannot be executed exits 127, as in a shell.
_PDEATHSIG_SHIM = """\
import ctypes, os, signal, sys
if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0) != 0:
    sys.stderr.write("dora-zmq: prctl(PR_SET_PDEATHSIG) failed: " + os.strerror(ctypes.get_errno()) + "\\n")
if os.getppid() != int(sys.argv[1]):
    os._exit(137)
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as exc:
    sys.stderr.write("could not start " + sys.argv[2] + ": " + str(exc) + "\\n")
    os._exit(127)
"""


def with_parent_death_signal(argv: list[str]) -> list[str]:
    """``argv`` wrapped so that the process gets SIGKILL when this process dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return argv
    return [sys.executable, "-I", "-S", "-c", _PDEATHSIG_SHIM, str(os.getpid()), *argv]


@dataclass(slots=True)
class ExitInfo:
    """How a node process ended."""

    exit_code: int | None
    signal: int | None
    failed: bool
    reason: str
    stderr_tail: str

    @classmethod
    def not_started(cls, reason: str, *, failed: bool = True) -> ExitInfo:
        """A node that never ran: it could not be started (``failed``), or was stopped first."""
        return cls(None, None, failed, reason, "")


@dataclass(slots=True)
class NodeProcess:
    """One running node process and its stop ladder state."""

    dataflow_id: str
    node: str
    popen: subprocess.Popen[bytes]
    logs: LogCapture
    term_at: float | None = None
    kill_at: float | None = None
    grace_s: float = 0.0
    signalled: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        """The node's pid (also its process group id)."""
        return self.popen.pid


class Supervisor:
    """Owns every node process of one daemon. Leaving it (``close``) kills what is left."""

    def __init__(self, wake: Callable[[], None] | None = None) -> None:
        self._procs: dict[tuple[str, str], NodeProcess] = {}
        self.log_lines: queue.Queue[tuple[str, str, str, str]] = queue.Queue()
        self._wake = wake  # told (from a log reader thread) when a node's output pipe closes

    def __enter__(self) -> "Supervisor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def spawn(
        self, dataflow_id: str, node: str, argv: list[str], env: dict[str, str], cwd: Path, log_path: Path
    ) -> NodeProcess:
        """Start one node.

        Raises:
            OSError: the executable cannot be started (the caller reports the node failed).
        """
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if shutil.which(argv[0]) is None:
            # the shim would report it only once started: say it here, as Popen would have
            if os.path.exists(argv[0]):
                raise PermissionError(errno.EACCES, "not an executable file", argv[0])
            raise FileNotFoundError(errno.ENOENT, "no such program", argv[0])
        logs = LogCapture(dataflow_id, node, log_path, self.log_lines, self._wake)
        try:
            popen = subprocess.Popen(  # noqa: S603 - argv comes from the user's own dataflow
                with_parent_death_signal(argv),
                env=env,
                cwd=str(cwd),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # no preexec_fn: see the module docstring
            )
        except BaseException:
            logs.join(0)
            raise
        assert popen.stdout is not None and popen.stderr is not None
        logs.start(popen.stdout, popen.stderr)
        proc = NodeProcess(dataflow_id, node, popen, logs)
        self._procs[(dataflow_id, node)] = proc
        log.info("dataflow %s: started node %s (pid %d)", dataflow_id, node, popen.pid)
        return proc

    def get(self, dataflow_id: str, node: str) -> NodeProcess | None:
        """The live process of a node, if any."""
        return self._procs.get((dataflow_id, node))

    def running(self, dataflow_id: str | None = None) -> list[NodeProcess]:
        """Live processes (of one dataflow, or all)."""
        return [p for (d, _), p in self._procs.items() if dataflow_id is None or d == dataflow_id]

    def request_stop(self, dataflow_id: str, grace_s: float) -> list[NodeProcess]:
        """Start the ladder for a dataflow's nodes; the caller sends them the STOP event."""
        now = time.monotonic()
        procs = self.running(dataflow_id)
        for p in procs:
            if p.term_at is None or now + grace_s < p.term_at:
                p.term_at = now + grace_s
                p.grace_s = grace_s
        return procs

    def tick(self) -> list[tuple[NodeProcess, ExitInfo]]:
        """Advance stop ladders and reap exited processes; returns what exited."""
        now = time.monotonic()
        exited = []
        for key, p in list(self._procs.items()):
            code = p.popen.poll()
            if code is not None:
                del self._procs[key]
                p.logs.join(_DRAIN_AFTER_EXIT_S)
                exited.append((p, self._exit_info(p, code)))
                continue
            if p.kill_at is not None and now >= p.kill_at:
                self._signal(p, signal.SIGKILL)
                p.kill_at = float("inf")
            elif p.term_at is not None and now >= p.term_at and not p.signalled:
                self._signal(p, signal.SIGTERM)
                p.kill_at = now + KILL_AFTER_TERM_S
        return exited

    def _signal(self, p: NodeProcess, sig: signal.Signals) -> None:
        p.signalled = sig.name
        log.warning(
            "dataflow %s: node %s did not stop within %.1f s; sending %s", p.dataflow_id, p.node, p.grace_s, sig.name
        )
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass

    @staticmethod
    def _exit_info(p: NodeProcess, code: int) -> ExitInfo:
        tail = p.logs.tail()
        if code == 0 and not p.signalled:
            return ExitInfo(0, None, False, "", tail)
        if code < 0:
            sig = -code
            if p.signalled:
                reason = f"did not stop within the grace period ({p.grace_s:g} s) after STOP; killed with {p.signalled}"
            else:
                reason = f"killed by signal {signal.Signals(sig).name if sig in signal.valid_signals() else sig}"
            return ExitInfo(None, sig, True, reason, tail)
        return ExitInfo(code, None, code != 0, "", tail)

    def close(self, timeout_s: float = 5.0) -> list[tuple[NodeProcess, ExitInfo]]:
        """Kill every remaining node (SIGTERM, then SIGKILL), reap it, and say how each ended."""
        procs = list(self._procs.values())
        for p in procs:
            if p.popen.poll() is None:
                self._signal(p, signal.SIGTERM)
        deadline = time.monotonic() + min(KILL_AFTER_TERM_S, timeout_s)
        for p in procs:
            try:
                p.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._signal(p, signal.SIGKILL)
                p.popen.wait(timeout_s)
        drained_by = time.monotonic() + 1.0  # for all of them: 100 nodes must not take 100 s
        for p in procs:
            p.logs.join(max(0.0, drained_by - time.monotonic()))
        self._procs.clear()
        return [(p, self._exit_info(p, p.popen.returncode)) for p in procs]
