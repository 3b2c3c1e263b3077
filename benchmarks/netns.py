"""Two "hosts" on one machine for the ``tcp-netns`` variant: network namespaces on a bridge.

Three namespaces, all named ``dzbench<pid>-*``: ``-sw`` holds a bridge, ``-h1`` and ``-h2``
each hold one end of a veth pair whose other end is a bridge port. Every interface is
created directly inside a namespace, so the machine's own network is never touched, and
deleting the namespaces deletes everything. :class:`TwoHosts` deletes them on exit, whatever
the exit (error, Ctrl-C, SIGTERM/SIGHUP while it is open), and on entry first removes the
namespaces of earlier benchmark processes that are gone (killed with SIGKILL). Before a
namespace is deleted, any process still inside it (only ours can be) is killed.

Namespaces share the kernel's CLOCK_MONOTONIC, so one-way latency stays one clock.
Needs root and iproute2 (``ip``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any

from dora_zmq._shm import pid_alive

PREFIX = "dzbench"
SUBNET = "10.233.0"
_STALE = re.compile(rf"^{PREFIX}(\d+)-")


class NetnsError(Exception):
    """A namespace could not be created (the message says which command failed and why)."""


def unavailable() -> str | None:
    """Why namespaces cannot be used here, or None if they (probably) can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root (ip netns)"
    if shutil.which("ip") is None:
        return "needs iproute2 (`ip`)"
    return None


def _ip(*args: str) -> None:
    try:
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=20)
    except subprocess.CalledProcessError as exc:
        raise NetnsError(f"`ip {' '.join(args)}` failed: {exc.stderr.strip() or exc.returncode}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"`ip {' '.join(args)}` failed: {exc}") from exc


def list_namespaces() -> list[str]:
    """Names of all network namespaces (``ip netns list``)."""
    out = subprocess.run(["ip", "netns", "list"], check=False, capture_output=True, text=True, timeout=20).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _delete(ns: str) -> None:
    """Kill what still runs in ``ns`` (a namespace lives on while a process is in it), delete it."""
    pids = subprocess.run(["ip", "netns", "pids", ns], check=False, capture_output=True, text=True, timeout=20).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True, timeout=20)


def remove_stale() -> list[str]:
    """Delete ``dzbench<pid>-*`` namespaces whose benchmark process no longer exists."""
    gone = []
    for ns in list_namespaces():
        m = _STALE.match(ns)
        if m and not pid_alive(int(m.group(1))):
            _delete(ns)
            gone.append(ns)
    return gone


@dataclass(frozen=True)
class Host:
    """One namespace with one address on the bridge."""

    name: str  # also the dataflow's machine id
    ns: str
    ip: str

    @property
    def prefix(self) -> tuple[str, ...]:
        """Command prefix that runs a program inside this host."""
        return ("ip", "netns", "exec", self.ns)


class TwoHosts:
    """``h1`` and ``h2`` on a bridge; a context manager that always deletes what it made."""

    def __init__(self) -> None:
        base = f"{PREFIX}{os.getpid()}"
        self.switch = f"{base}-sw"
        self.h1 = Host("h1", f"{base}-h1", f"{SUBNET}.1")
        self.h2 = Host("h2", f"{base}-h2", f"{SUBNET}.2")
        self.stale_removed: list[str] = []
        self._made: list[str] = []
        self._old_handlers: dict[int, Any] = {}

    @property
    def hosts(self) -> tuple[Host, Host]:
        return (self.h1, self.h2)

    def __enter__(self) -> TwoHosts:
        self._trap_signals()
        try:
            self.stale_removed = remove_stale()
            self._add_ns(self.switch)
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            for port, host in enumerate(self.hosts, 1):
                self._add_ns(host.ns)
                # both veth ends are born inside namespaces: nothing appears in the root one
                _ip("-n", self.switch, "link", "add", f"p{port}", "type", "veth", "peer", "name", "eth0", "netns", host.ns)
                _ip("-n", self.switch, "link", "set", f"p{port}", "master", "br0")
                _ip("-n", self.switch, "link", "set", f"p{port}", "up")
                _ip("-n", host.ns, "addr", "add", f"{host.ip}/24", "dev", "eth0")
                _ip("-n", host.ns, "link", "set", "eth0", "up")
                _ip("-n", host.ns, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _add_ns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self._made.append(ns)

    def close(self) -> None:
        """Delete every namespace made (their veths and the bridge go with them); idempotent."""
        try:
            while self._made:
                _delete(self._made.pop())
        finally:
            self._restore_signals()

    # SIGTERM/SIGHUP would end the process without running ``finally`` blocks: while the
    # namespaces exist, turn them into SystemExit so the caller's cleanup (and ours) runs.
    def _trap_signals(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:
                if signal.getsignal(sig) is signal.SIG_DFL:
                    self._old_handlers[sig] = signal.signal(sig, _exit_on_signal)
            except ValueError:  # not the main thread: leave signals alone
                pass

    def _restore_signals(self) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        self._old_handlers.clear()


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
