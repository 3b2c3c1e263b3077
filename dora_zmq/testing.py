"""Test helpers: run real dataflows as owned processes, and find any process left behind.

Every process started here carries ``DORA_ZMQ_TEST_TAG=<uuid>`` in its environment, and so do
all its descendants (daemons pass their environment on to nodes). After a run,
:func:`leaked_processes` finds anything still alive with that tag, whatever its parent, so a
test can kill it and fail loudly.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterable, Mapping, Sequence

import psutil

__all__ = [
    "DataflowProcess",
    "RunResult",
    "TAG_ENV",
    "free_tcp_address",
    "kill_tagged",
    "leaked_processes",
    "node_events",
    "run_cli",
    "write_dataflow",
    "write_files",
]

TAG_ENV = "DORA_ZMQ_TEST_TAG"


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a CLI command ended."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        """stdout and stderr together."""
        return self.stdout + self.stderr


class DataflowProcess:
    """A ``dora-zmq`` CLI command running in its own session, owned by the caller.

    Use as a context manager: leaving it kills the whole tagged process tree (bounded). Lines
    are collected as they come, so tests wait on output instead of sleeping.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        cwd: str | Path | None = None,
        env: dict[str, str] | None = None,
        prefix: Sequence[str] = (),
        tag: str | None = None,
        python_args: Sequence[str] | None = None,
    ) -> None:
        """Start ``dora-zmq ARGS`` (or ``python PYTHON_ARGS`` for a plain script).

        Args:
            prefix: wraps the command, e.g. ``["ip", "netns", "exec", "h1"]``.
            tag: share a tag between several processes of one test (default: a new one).
        """
        self.tag = tag or uuid.uuid4().hex
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env[TAG_ENV] = self.tag
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        full_env["COLUMNS"] = "200"
        self._tmpdir = full_env.get("TMPDIR") or None  # where a daemon it runs makes its run folder
        tail = [sys.executable, *python_args] if python_args is not None else [sys.executable, "-m", "dora_zmq", *args]
        self.args = [*prefix, *tail]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(  # noqa: S603 - our own CLI
            self.args,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout_lines), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr_lines), daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _pump(self, pipe: IO[bytes] | None, sink: list[str]) -> None:
        assert pipe is not None
        for raw in iter(pipe.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            sink.append(line)
            self._lines.put(line)
        pipe.close()

    @property
    def output(self) -> str:
        """Everything printed so far (stdout then stderr)."""
        return "\n".join(self.stdout_lines + self.stderr_lines)

    def wait_for_line(self, pattern: str, timeout: float = 20.0) -> str:
        """Block until a line matching the regex ``pattern`` is printed.

        Raises:
            TimeoutError: with everything printed so far.
        """
        rx = re.compile(pattern)
        for line in self.stdout_lines + self.stderr_lines:
            if rx.search(line):
                return line
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no line matching {pattern!r} within {timeout} s; output:\n{self.output}")
            try:
                line = self._lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if (
                    self.proc.poll() is not None
                    and self._lines.empty()
                    and not any(t.is_alive() for t in self._readers)
                ):
                    raise TimeoutError(
                        f"process exited ({self.proc.returncode}) before {pattern!r}; output:\n{self.output}"
                    ) from None
                continue
            if rx.search(line):
                return line

    def send_signal(self, sig: int) -> None:
        """Signal the CLI process only (as ``kill`` would), not its group."""
        self.proc.send_signal(sig)

    def interrupt_group(self) -> None:
        """What a terminal's Ctrl-C does: SIGINT to the CLI's whole process group."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def wait(self, timeout: float = 30.0) -> RunResult:
        """Wait for the CLI to exit (killing the tree on timeout) and return its result."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_tagged(self.tag)
            self.proc.wait(5)
            for t in self._readers:
                t.join(2)
            raise TimeoutError(
                f"{' '.join(self.args)} did not exit within {timeout} s; output:\n{self.output}"
            ) from None
        for t in self._readers:
            t.join(5)
        return RunResult(
            code, "\n".join(self.stdout_lines), "\n".join(self.stderr_lines), time.monotonic() - self.started
        )

    def __enter__(self) -> "DataflowProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)
        kill_tagged(self.tag)
        for t in self._readers:
            t.join(2)
        # A daemon killed here (or by the test) could not remove its run folder; the next
        # daemon would, but the last test of a run has no next daemon.
        from .daemon import sweep_stale_run_dirs  # here, not at the top: importing testing stays light

        sweep_stale_run_dirs(Path(self._tmpdir) if self._tmpdir else None)


def run_cli(
    args: Sequence[str], *, cwd: str | Path | None = None, env: dict[str, str] | None = None, timeout: float = 60.0
) -> RunResult:
    """Run one ``dora-zmq`` command to completion; the process tree is reaped either way."""
    with DataflowProcess(args, cwd=cwd, env=env) as p:
        return p.wait(timeout)


def leaked_processes(tag: str) -> list[psutil.Process]:
    """Live processes whose environment carries ``tag`` (zombies and the caller excluded)."""
    found = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "status"]):
        if proc.pid == me or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if proc.environ().get(TAG_ENV) == tag:
                found.append(proc)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess, OSError):
            continue
    return found


def kill_tagged(tag: str, timeout: float = 5.0) -> list[str]:
    """SIGKILL every process carrying ``tag``; returns their command lines (empty if none)."""
    leaked = leaked_processes(tag)
    names = []
    for proc in leaked:
        try:
            names.append(" ".join(proc.cmdline()))
            proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    psutil.wait_procs(leaked, timeout=timeout)
    return names


def write_files(directory: Path, files: Mapping[str, str]) -> None:
    """Write ``relative path -> text`` into ``directory`` (texts dedented, parent folders made).

    A text starting with ``#!`` is made executable.
    """
    for rel, text in files.items():
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        body = textwrap.dedent(text).lstrip("\n")
        target.write_text(body)
        if body.startswith("#!"):
            target.chmod(0o755)


def write_dataflow(
    directory: Path, yaml_text: str, *, copy: Iterable[str | Path] = (), files: Mapping[str, str] | None = None
) -> Path:
    """Write ``dataflow.yml`` (dedented) into ``directory`` with the node files it needs.

    Args:
        copy: existing files to copy next to the YAML (by their base name).
        files: ``relative path -> text`` to write, as :func:`write_files` does.

    Returns:
        The path of the YAML file.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for src in copy:
        shutil.copy(src, directory / Path(src).name)
    write_files(directory, {**(files or {}), "dataflow.yml": yaml_text})
    return directory / "dataflow.yml"


_EVENT_LINE = re.compile(r"^(\S+) EVENT (\{.*\})\s*$")


def node_events(output: str, node: str) -> list[dict[str, Any]]:
    """The ``EVENT {json}`` lines a node printed, as ``[node] line`` in a CLI's output."""
    found = []
    for line in output.splitlines():
        m = _EVENT_LINE.match(line)
        if m and m.group(1) == node:
            found.append(json.loads(m.group(2)))
    return found


def free_tcp_address() -> str:
    """``tcp://127.0.0.1:PORT`` with a port that was free a moment ago (for a test coordinator)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"
