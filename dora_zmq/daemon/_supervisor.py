"""Spawning, watching and stopping node processes: the only place that calls ``Popen``.

Stopping is a bounded ladder, as in dora: STOP event -> grace period -> SIGTERM to the node's
process group -> 2 s -> SIGKILL -> reap. Every node leads its own process group
(``start_new_session``) so that a terminal's Ctrl-C reaches only the CLI, which turns it into
a clean STOP, and so that signalling the group also reaches the node's own children. Each node
also gets ``PR_SET_PDEATHSIG``: if the daemon dies without cleaning up, the kernel kills it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ._logs import LogCapture

__all__ = ["ExitInfo", "NodeProcess", "Supervisor"]

log = logging.getLogger(__name__)

KILL_AFTER_TERM_S = 2.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


@dataclass(slots=True)
class ExitInfo:
    """How a node process ended."""

    exit_code: int | None
    signal: int | None
    failed: bool
    reason: str
    stderr_tail: str


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

    def __init__(self) -> None:
        self._procs: dict[tuple[str, str], NodeProcess] = {}
        self.log_lines: queue.Queue[tuple[str, str, str, str]] = queue.Queue()

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
        logs = LogCapture(dataflow_id, node, log_path, self.log_lines)
        try:
            popen = subprocess.Popen(  # noqa: S603 - argv comes from the user's own dataflow
                argv,
                env=env,
                cwd=str(cwd),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
            )
        except OSError:
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
                p.logs.join()
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
        log.warning("dataflow %s: node %s did not stop within %.1f s; sending %s", p.dataflow_id, p.node, p.grace_s, sig.name)
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
            p.logs.join(1.0)
        self._procs.clear()
        return [(p, self._exit_info(p, p.popen.returncode)) for p in procs]
