"""Nodes die with a SIGKILLed ``run`` through PR_SET_PDEATHSIG alone, set without ``preexec_fn``.

A Python node using ``Node()`` also watches its parent; these nodes do not: a shell script that
execs ``sleep`` and a Python script that never calls ``Node()``. Only the kernel's parent-death
signal can end them. The daemon sets it through a small exec shim, because ``preexec_fn`` runs
Python between fork and exec in a multi-threaded process, which can deadlock the child.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from dora_zmq.daemon._supervisor import Supervisor
from dora_zmq.testing import leaked_processes, write_dataflow

pytestmark = pytest.mark.timeout(60)


def test_nodes_that_do_not_watch_their_parent_die_with_a_sigkilled_run(dora, tmp_path: Path) -> None:
    yml = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: shell
            path: ./forever.sh
          - id: plain
            path: plain.py
        """,
        files={
            "forever.sh": "#!/bin/sh\necho READY\nexec sleep 600\n",
            "plain.py": "import time\nprint('READY', flush=True)\ntime.sleep(600)\n",
        },
    )
    p = dora("run", str(yml))
    p.wait_for_line(r"^shell READY$")
    p.wait_for_line(r"^plain READY$")
    nodes = [q for q in leaked_processes(p.tag) if q.pid != p.proc.pid]
    assert {q.name() for q in nodes} >= {"sleep"}, [q.cmdline() for q in nodes]
    p.send_signal(signal.SIGKILL)
    p.proc.wait(5)
    _, alive = psutil.wait_procs(nodes, timeout=5)
    assert not alive, [q.cmdline() for q in alive]


def test_the_supervisor_passes_no_preexec_fn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, object] = {}
    real = subprocess.Popen

    def spy(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        seen.update(kwargs)
        return real(*args, **kwargs)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(subprocess, "Popen", spy)
    with Supervisor() as sup:
        proc = sup.spawn("df", "n", [sys.executable, "-c", "pass"], {}, tmp_path, tmp_path / "log.txt")
        proc.popen.wait(10)
    assert seen.get("preexec_fn") is None
    assert seen.get("start_new_session") is True


def test_a_missing_program_is_still_reported_at_spawn(tmp_path: Path) -> None:
    with Supervisor() as sup:
        with pytest.raises(FileNotFoundError):
            sup.spawn("df", "n", [str(tmp_path / "nope")], {}, tmp_path, tmp_path / "log.txt")
        (tmp_path / "not_exec").write_text("x")
        with pytest.raises(PermissionError):
            sup.spawn("df", "n", [str(tmp_path / "not_exec")], {}, tmp_path, tmp_path / "log.txt")
