"""Several "hosts" on one machine: Linux network namespaces on a bridge (needs root).

The bridge lives in its own namespace, so nothing here touches the machine's own network;
traffic only goes between addresses this module made. Cutting a host's link sets its bridge
port down; restoring sets it up again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from typing import Sequence

import pytest

SUBNET = "10.231.{}.{}"


def netns_unavailable() -> str | None:
    """Why namespaces cannot be used here, or None if they can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root for ip netns"
    if shutil.which("ip") is None:
        return "needs iproute2 (`ip`)"
    name = "dzprobe" + uuid.uuid4().hex[:6]
    probe = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create network namespaces: {probe.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Host:
    """One namespace with one address on the bridge."""

    name: str
    ns: str
    ip: str
    port_if: str  # the bridge-side veth, in the switch namespace

    @property
    def prefix(self) -> list[str]:
        """Command prefix that runs a program inside this host."""
        return ["ip", "netns", "exec", self.ns]


class Network:
    """A bridge and hosts; ``close()`` deletes every namespace it made."""

    def __init__(self, subnet: int = 77, prefix: str = "dz") -> None:
        """``prefix`` (at most 4 characters) starts every namespace and interface name made here."""
        if len(prefix) > 4:
            raise ValueError(f"namespace prefix {prefix!r} is longer than 4 characters (interface names: 15)")
        self.id = uuid.uuid4().hex[:5]
        self.subnet = subnet
        self.prefix = prefix
        self.switch = f"{prefix}sw{self.id}"
        self.hosts: dict[str, Host] = {}
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")

    def add_host(self, name: str) -> Host:
        """A new host at 10.231.<subnet>.<n>."""
        n = len(self.hosts) + 1
        ns = f"{self.prefix}h{n}{self.id}"
        host_if, port_if = f"{self.prefix}v{n}{self.id}", f"{self.prefix}b{n}{self.id}"
        _ip("netns", "add", ns)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", port_if)
        _ip("link", "set", host_if, "netns", ns)
        _ip("link", "set", port_if, "netns", self.switch)
        _ip("-n", self.switch, "link", "set", port_if, "master", "br0")
        _ip("-n", self.switch, "link", "set", port_if, "up")
        addr = SUBNET.format(self.subnet, n)
        _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", host_if)
        _ip("-n", ns, "link", "set", host_if, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        host = Host(name, ns, addr, port_if)
        self.hosts[name] = host
        return host

    def cut(self, host: Host) -> None:
        """Unplug the host's cable (its bridge port goes down)."""
        _ip("-n", self.switch, "link", "set", host.port_if, "down")

    def restore(self, host: Host) -> None:
        """Plug it back in."""
        _ip("-n", self.switch, "link", "set", host.port_if, "up")

    def close(self) -> None:
        """Delete every namespace (their veths go with them)."""
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "del", host.ns], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.switch], capture_output=True)


def free_port() -> int:
    """A port number unlikely to be in use (namespaces have their own port spaces anyway)."""
    import random

    return random.randint(20000, 60000)


@pytest.fixture
def network() -> "Sequence[Network]":  # type: ignore[misc]
    why = netns_unavailable()
    if why:
        pytest.skip(why)
    net = Network()
    try:
        yield net
    finally:
        net.close()
