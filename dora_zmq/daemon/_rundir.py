"""A daemon's private run folder (its ipc sockets), and removing those of daemons that died.

A daemon removes its run folder when it closes. One that is killed (SIGKILL, OOM, power cut
of a container) cannot, so each run folder holds a pid file, and every daemon that starts
removes the folders of daemons that are gone. Only folders that are certainly ours and
certainly dead are touched: the name prefix, a real folder (not a symlink) owned by this user,
a regular pid file written by a daemon, that process gone (or its pid reused), and nothing
listening on its daemon socket (``daemon_endpoint``; which also covers a live daemon in another
pid namespace sharing ``/tmp``).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path

from .._shm import pid_alive
from .._transport import ipc_endpoint

__all__ = ["PID_FILE", "RUN_DIR_PREFIX", "create_run_dir", "daemon_endpoint", "sweep_stale_run_dirs"]

log = logging.getLogger(__name__)

RUN_DIR_PREFIX = "dora-zmq-"
PID_FILE = "daemon.pid"
_SOCKET_NAME = "daemon"
_PID_FILE_MAX = 64  # "<pid> <start time>\n"; anything longer was not written by a daemon


def daemon_endpoint(run_dir: Path) -> str:
    """Where the daemon of ``run_dir`` listens for its nodes: its sweepers look there too."""
    return ipc_endpoint(str(run_dir), _SOCKET_NAME)


def create_run_dir() -> Path:
    """A new private folder under the temporary directory, with this process's pid file.

    The pid file is in place before the daemon binds anything there, so a sweeping daemon
    never mistakes a folder being set up for a dead one (no pid file: not touched).
    """
    run_dir = Path(tempfile.mkdtemp(prefix=RUN_DIR_PREFIX))
    try:
        _write_pid_file(run_dir)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run_dir


def sweep_stale_run_dirs(base: Path | None = None) -> list[Path]:
    """Remove the run folders of daemons that died without cleaning up; returns them.

    Args:
        base: where run folders are (default: the temporary directory, as for new ones).
    """
    base = Path(base) if base is not None else Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(os.scandir(base))
    except OSError as exc:
        log.debug("cannot list %s: %s", base, exc)
        return removed
    uid = os.getuid()
    for entry in entries:
        if not entry.name.startswith(RUN_DIR_PREFIX):
            continue
        path = Path(entry.path)
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != uid:
                continue
            if not _is_stale(path):
                continue
            shutil.rmtree(path)  # never follows symlinks inside (fd-based on Linux)
        except FileNotFoundError:
            continue  # removed meanwhile (its daemon closed, or another daemon swept it)
        except OSError as exc:
            log.debug("cannot sweep %s: %s", path, exc)
            continue
        removed.append(path)
    if removed:
        names = ", ".join(p.name for p in removed)
        log.info("removed %d run folder(s) of daemons that are gone: %s", len(removed), names)
    return removed


def _write_pid_file(run_dir: Path) -> None:
    start = _start_time(os.getpid())
    body = f"{os.getpid()} {start if start is not None else '-'}\n"
    tmp = run_dir / f".{PID_FILE}.tmp"
    tmp.write_text(body)
    os.replace(tmp, run_dir / PID_FILE)  # atomic: a sweeper never reads half a pid file


def _read_pid_file(run_dir: Path) -> tuple[int, int | None] | None:
    """(pid, start time) from a run folder's pid file; None if there is no valid one."""
    try:
        fd = os.open(run_dir / PID_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None  # missing, a symlink (ELOOP) or unreadable: not a folder we made
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_size > _PID_FILE_MAX:
            return None
        text = os.read(fd, _PID_FILE_MAX + 1).decode("ascii", errors="strict")
    except (OSError, UnicodeDecodeError):
        return None
    finally:
        os.close(fd)
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit() or not (parts[1].isdigit() or parts[1] == "-"):
        return None
    return int(parts[0]), (int(parts[1]) if parts[1] != "-" else None)


def _is_stale(run_dir: Path) -> bool:
    found = _read_pid_file(run_dir)
    if found is None:
        return False
    pid, start = found
    if pid <= 0 or _alive(pid, start):
        return False
    return not _listening(Path(daemon_endpoint(run_dir).removeprefix("ipc://")))


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart;
    None if unknown (no /proc) or the process is gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: fields start after the last ")".
    fields = text[text.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 of proc(5); fields[0] is field 3


def _alive(pid: int, start: int | None) -> bool:
    """Whether the daemon that wrote the pid file still runs (a reused pid has another start)."""
    if not pid_alive(pid):
        return False
    now = _start_time(pid) if start is not None else None
    return now is None or now == start


def _listening(path: Path) -> bool:
    """True if something accepts connections on the unix socket at ``path`` (or we cannot tell)."""
    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            return False  # no socket there (a symlink is not one either): nobody listens
    except FileNotFoundError:
        return False
    except OSError:
        return True
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(str(path))
        except OSError as exc:
            return exc.errno not in (errno.ECONNREFUSED, errno.ENOENT)
    return True
