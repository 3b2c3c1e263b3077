"""Several "hosts" on one machine: Linux network namespaces on a bridge (needs root, iproute2).

The one namespace helper of the repository: the multihost and deploy tests use it, and so does
the benchmark's ``tcp-netns`` variant (``benchmarks/netns.py`` imports it).

A :class:`Network` is a namespace holding a bridge (the switch) plus one namespace per host.
Every interface is created directly inside a namespace (both veth ends are born there), so the
machine's own network is never touched and deleting the namespaces deletes everything; traffic
only goes between addresses this module made. Cutting a host's link sets its bridge port down;
restoring sets it up again.

Names: every namespace is ``<prefix>-<pid>-<id>-<role>``. The pid is the creating process's, so
a new :class:`Network` first deletes the namespaces of earlier processes (same prefix) that are
gone (killed by a timeout or SIGKILL before they could clean up). Before a namespace is deleted,
any process still inside it (only ours can be) is killed: a namespace lives on while a process is
in it. While a network exists, SIGTERM/SIGHUP become ``SystemExit`` (when their handler was the
default one, in the main thread), so ``finally`` blocks, and with them :meth:`Network.close`, run.

Namespaces share the kernel's CLOCK_MONOTONIC, so one-way latency measured across hosts stays
one clock.

Threading: a network is used by one thread (the test's or the benchmark's).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any

from dora_zmq._shm import pid_alive

__all__ = [
    "SUBNET",
    "Host",
    "NetnsError",
    "Network",
    "free_port",
    "list_namespaces",
    "netns_unavailable",
    "remove_stale",
]

SUBNET = "10.231.{}.{}"  # 10.231.<network's subnet>.<host number>; each network has its own bridge
_IP_TIMEOUT_S = 20
_HOST_IF = "eth0"  # the host's end of its veth pair, inside the host's namespace


class NetnsError(Exception):
    """A namespace command failed (the message says which one and why)."""


def netns_unavailable() -> str | None:
    """Why namespaces cannot be used here, or None if they can (a namespace was made and deleted)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root for ip netns"
    if shutil.which("ip") is None:
        return "needs iproute2 (`ip`)"
    name = "dzprobe" + uuid.uuid4().hex[:6]
    probe = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, timeout=_IP_TIMEOUT_S)
    if probe.returncode != 0:
        return f"cannot create network namespaces: {probe.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=_IP_TIMEOUT_S)
    return None


def _ip(*args: str) -> None:
    try:
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=_IP_TIMEOUT_S)
    except subprocess.CalledProcessError as exc:
        raise NetnsError(f"`ip {' '.join(args)}` failed: {exc.stderr.strip() or exc.returncode}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"`ip {' '.join(args)}` failed: {exc}") from exc


def list_namespaces() -> list[str]:
    """Names of all network namespaces (``ip netns list``)."""
    out = subprocess.run(
        ["ip", "netns", "list"], check=False, capture_output=True, text=True, timeout=_IP_TIMEOUT_S
    ).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _delete(ns: str) -> None:
    """Kill what still runs in ``ns`` (a namespace lives on while a process is in it), delete it."""
    pids = subprocess.run(
        ["ip", "netns", "pids", ns], check=False, capture_output=True, text=True, timeout=_IP_TIMEOUT_S
    ).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True, timeout=_IP_TIMEOUT_S)


def remove_stale(prefix: str) -> list[str]:
    """Delete the ``<prefix>-<pid>-*`` namespaces whose process no longer exists; returns their names."""
    stale = re.compile(rf"^{re.escape(prefix)}-(\d+)-")
    gone = []
    for ns in list_namespaces():
        m = stale.match(ns)
        if m and not pid_alive(int(m.group(1))):
            _delete(ns)
            gone.append(ns)
    return gone


@dataclass(frozen=True)
class Host:
    """One namespace with one address on the bridge."""

    name: str  # the caller's name for it (the benchmark also uses it as the machine id)
    ns: str
    ip: str
    port_if: str  # the bridge-side veth, in the switch namespace

    @property
    def prefix(self) -> list[str]:
        """Command prefix that runs a program inside this host."""
        return ["ip", "netns", "exec", self.ns]


class Network:
    """A bridge and hosts; ``close()`` (or leaving the ``with`` block) deletes every namespace it made.

    Args:
        subnet: hosts get 10.231.<subnet>.<n> (networks never see each other, so any value works).
        prefix: starts every namespace name, so a caller's namespaces can be told apart (and its
            stale ones removed): the tests use ``dz``, the benchmark ``dzbench``.
    """

    def __init__(self, subnet: int = 77, prefix: str = "dz") -> None:
        if not re.fullmatch(r"[A-Za-z0-9_]+", prefix):
            raise ValueError(f"namespace prefix {prefix!r}: letters, digits and '_' only ('-' separates the pid)")
        self.id = uuid.uuid4().hex[:5]
        self.subnet = subnet
        self.prefix = prefix
        self.hosts: dict[str, Host] = {}
        self._base = f"{prefix}-{os.getpid()}-{self.id}"
        self.switch = f"{self._base}-sw"
        self._made: list[str] = []
        self._old_handlers: dict[int, Any] = {}
        self._trap_signals()
        try:
            self.stale_removed = remove_stale(prefix)
            self._add_ns(self.switch)
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise

    def add_host(self, name: str) -> Host:
        """A new host at 10.231.<subnet>.<n>, linked to the bridge."""
        n = len(self.hosts) + 1
        host = Host(name, f"{self._base}-h{n}", SUBNET.format(self.subnet, n), f"p{n}")
        try:
            self._add_ns(host.ns)
            # both veth ends are born inside namespaces: nothing appears in the root one
            veth = ("type", "veth", "peer", "name", _HOST_IF, "netns", host.ns)
            _ip("-n", self.switch, "link", "add", host.port_if, *veth)
            _ip("-n", self.switch, "link", "set", host.port_if, "master", "br0")
            _ip("-n", self.switch, "link", "set", host.port_if, "up")
            _ip("-n", host.ns, "addr", "add", f"{host.ip}/24", "dev", _HOST_IF)
            _ip("-n", host.ns, "link", "set", _HOST_IF, "up")
            _ip("-n", host.ns, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise
        self.hosts[name] = host
        return host

    def cut(self, host: Host) -> None:
        """Unplug the host's cable (its bridge port goes down)."""
        _ip("-n", self.switch, "link", "set", host.port_if, "down")

    def restore(self, host: Host) -> None:
        """Plug it back in."""
        _ip("-n", self.switch, "link", "set", host.port_if, "up")

    def close(self) -> None:
        """Delete every namespace made (their veths and the bridge go with them); idempotent."""
        try:
            while self._made:
                _delete(self._made.pop())
        finally:
            self._restore_signals()

    def __enter__(self) -> Network:
        return self

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _add_ns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self._made.append(ns)

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


def free_port() -> int:
    """A port number unlikely to be in use (namespaces have their own port spaces anyway)."""
    return random.randint(20000, 60000)
