"""Dynamic-node addressing: where a node started by hand (``path: dynamic``) registers, the
machine name it publishes under, and the endpoint it announces."""

from __future__ import annotations

import os

from .. import _control as ctl
from .._errors import ControlError, NodeConfigError
from .._transport import Channel, Publisher
from ._config import NodeEnvironment

__all__ = ["advertised", "announced_endpoint", "local_address_towards", "machine_name", "resolve_dynamic"]


def resolve_dynamic(env: NodeEnvironment, timeout_s: float) -> NodeEnvironment:
    """Ask the coordinator which daemon a dynamic node registers with."""
    client = Channel.connect(env.coordinator)
    try:
        reply = client.request(ctl.ResolveNode(env.node_id, env.dataflow_id), timeout_s)
    except ControlError as exc:
        raise NodeConfigError(
            f"dynamic node '{env.node_id}': no coordinator answered at {env.coordinator}; "
            f"set DORA_ZMQ_COORDINATOR=tcp://<host>:<port> or pass Node(..., coordinator=...)"
        ) from exc
    finally:
        client.close()
    if isinstance(reply, ctl.Failed):
        raise NodeConfigError(f"dynamic node '{env.node_id}': {reply.message}")
    remote = [a for a in reply.addresses if a.startswith("tcp://")]
    # Same host as the daemon (its tcp address is one of ours, or it has none): use ipc.
    same_host = not remote or _is_local_address(remote[0])
    local = [a for a in reply.addresses if a.startswith("ipc://") and same_host and os.path.exists(a[len("ipc://") :])]
    address = (local or remote or [""])[0]
    if not address:
        raise NodeConfigError(
            f"dynamic node '{env.node_id}': the daemon of machine '{reply.machine}' is on another host and "
            "listens for nodes on ipc only; start it with --bind-data <interface> (and --advertise <address>)"
        )
    return NodeEnvironment(address, env.node_id, reply.dataflow_id, False, env.coordinator)


def _is_local_address(address: str) -> bool:
    """True when the host of ``tcp://host:port`` is an address of this host's interfaces."""
    import psutil

    host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    ours = {a.address for addrs in psutil.net_if_addrs().values() for a in addrs}
    return host in ours or host in ("127.0.0.1", "localhost")


def local_address_towards(address: str) -> str:
    """The local IP address used to reach ``tcp://host:port`` (what peers can connect back to)."""
    import socket

    host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((host, 9))  # UDP connect sends nothing; it only picks a route
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def advertised(tcp: str, advertise_host: str) -> str:
    """``tcp``'s port at ``advertise_host`` (what peers on other hosts connect to)."""
    if not tcp or not advertise_host:
        return tcp
    port = tcp.rsplit(":", 1)[1]
    return f"tcp://{advertise_host}:{port}"


def machine_name(daemon_machine: str, node_id: str, remote: bool, relayed: bool) -> str:
    """The machine a node publishes under: its daemon's, or its own when peers reach it over
    tcp only (a node on another host than its daemon, or behind a relay)."""
    return f"{daemon_machine}/{node_id}" if remote or relayed else daemon_machine


def announced_endpoint(
    machine: str, pub: Publisher, tcp_advertise: str, remote: bool, relay_public: str | None, daemon: str
) -> ctl.NodeEndpoint:
    """The endpoint a node announces: its publisher's addresses as peers can reach them.

    A remote node advertises ``$DORA_ZMQ_ADVERTISE`` or the address it reaches ``daemon`` from;
    behind a relay, the relay's public address stands for it.
    """
    if relay_public is not None:
        return ctl.NodeEndpoint(machine, "", relay_public)
    advertise = tcp_advertise
    if remote:
        advertise = os.environ.get(ctl.ENV_ADVERTISE) or local_address_towards(daemon)
    return ctl.NodeEndpoint(machine, pub.ipc, advertised(pub.tcp, advertise))
