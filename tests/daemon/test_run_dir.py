"""Run folders of killed daemons are removed by the next daemon; nothing else ever is."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dora_zmq.daemon import Daemon, sweep_stale_run_dirs
from dora_zmq.daemon._rundir import PID_FILE, RUN_DIR_PREFIX, _start_time
from dora_zmq.testing import free_tcp_address


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(10)
    return child.pid


def _run_dir(base: Path, name: str, pid: int | None, start: int | str | None = "-") -> Path:
    d = base / f"{RUN_DIR_PREFIX}{name}"
    d.mkdir(mode=0o700)
    (d / "daemon.sock").touch()  # what a killed daemon leaves: a socket path nobody listens on
    if pid is not None:
        (d / PID_FILE).write_text(f"{pid} {start}\n")
    return d


def _dirs(base: Path) -> set[str]:
    return {p.name for p in base.iterdir() if p.name.startswith(RUN_DIR_PREFIX)}


def test_only_dead_daemons_run_dirs_are_swept(tmp_path: Path) -> None:
    dead = _run_dir(tmp_path, "dead", _dead_pid())
    live = _run_dir(tmp_path, "live", os.getpid(), _start_time(os.getpid()))
    live_no_start = _run_dir(tmp_path, "live2", os.getpid())
    # A live pid that is another process than the one that wrote the file (pid reused).
    reused = _run_dir(tmp_path, "reused", os.getpid(), (_start_time(os.getpid()) or 0) + 1)
    no_pid_file = _run_dir(tmp_path, "foreign", None)
    garbage = _run_dir(tmp_path, "garbage", None)
    (garbage / PID_FILE).write_text("not a pid\n")
    other_prefix = tmp_path / "dora-zmqX"
    other_prefix.mkdir()
    (other_prefix / PID_FILE).write_text(f"{_dead_pid()} -\n")

    removed = sweep_stale_run_dirs(tmp_path)

    assert sorted(removed) == sorted([dead, reused])
    for kept in (live, live_no_start, no_pid_file, garbage, other_prefix):
        assert kept.is_dir(), kept


def test_symlinks_are_never_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    stale_target = _run_dir(elsewhere, "target", _dead_pid())
    link = tmp_path / f"{RUN_DIR_PREFIX}link"
    link.symlink_to(stale_target, target_is_directory=True)
    # A folder whose pid file is a symlink to a stale-looking one: not a file a daemon wrote.
    linked_pid = _run_dir(tmp_path, "linkedpid", None)
    (linked_pid / PID_FILE).symlink_to(stale_target / PID_FILE)

    assert sweep_stale_run_dirs(tmp_path) == []
    assert link.is_symlink() and stale_target.is_dir() and (stale_target / PID_FILE).is_file()
    assert linked_pid.is_dir()


def test_a_dir_with_a_listening_socket_is_kept_even_if_its_pid_is_gone(tmp_path: Path) -> None:
    """A live daemon in another pid namespace sharing /tmp: its pid means nothing here."""
    d = tmp_path / f"{RUN_DIR_PREFIX}otherns"
    d.mkdir()
    (d / PID_FILE).write_text(f"{_dead_pid()} -\n")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(d / "daemon.sock"))
        listener.listen()
        assert sweep_stale_run_dirs(tmp_path) == []
    assert d.is_dir()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to make a folder owned by another user")
def test_other_users_dirs_are_kept(tmp_path: Path) -> None:
    d = _run_dir(tmp_path, "nobody", _dead_pid())
    os.chown(d, 65534, 65534)
    assert sweep_stale_run_dirs(tmp_path) == []
    assert d.is_dir()


def test_a_sigkilled_daemons_run_dir_is_swept_by_the_next_daemon_and_a_live_one_is_kept(dora, tmp_path: Path) -> None:
    base = tmp_path / "tmp"
    base.mkdir()
    env = {"TMPDIR": str(base)}
    coordinator = free_tcp_address()  # nothing listens there: daemons retry, which is enough here

    live = dora("daemon", "--coordinator", coordinator, env=env)
    live.wait_for_line("connecting to")
    (live_dir,) = _dirs(base)
    victim = dora("daemon", "--coordinator", coordinator, env=env)
    victim.wait_for_line("connecting to")
    (victim_dir,) = _dirs(base) - {live_dir}
    assert (base / victim_dir / PID_FILE).read_text().split()[0] == str(victim.proc.pid)

    victim.send_signal(signal.SIGKILL)
    victim.proc.wait(10)
    assert (base / victim_dir).is_dir()  # killed: it could not clean up

    following = dora("daemon", "--coordinator", coordinator, env=env)
    following.wait_for_line("connecting to")
    left = _dirs(base)
    assert victim_dir not in left
    assert live_dir in left and len(left) == 2  # the live one and the new one

    for p in (live, following):  # a clean stop removes the daemon's own folder
        p.send_signal(signal.SIGTERM)
        assert p.wait(20).returncode == 0, p.output
    assert _dirs(base) == set()


def test_a_daemon_that_never_served_removes_its_run_dir_on_close() -> None:
    with Daemon(free_tcp_address()) as daemon:
        run_dir = daemon.run_dir
        assert (run_dir / PID_FILE).is_file()
    assert not run_dir.exists()
