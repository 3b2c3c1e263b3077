"""What a daemon knows of each dataflow it runs nodes for, and who may speak for its nodes.

Owned by the daemon's event-loop thread (``Daemon.serve_forever``); nothing here is shared.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from pathlib import Path

from .. import _control as ctl
from ..descriptor import Dataflow, NodeKind
from ._restart import RestartBook

__all__ = ["DataflowState", "Senders", "check_identities", "check_token"]


@dataclass(slots=True)
class Senders:
    """Which control connections may speak for which node of one dataflow.

    A node's messages are accepted only from the connection it registered on and the second
    socket it announced in ``RegisterNode.sender_identity``: the node id written inside a
    message is a claim, the ZeroMQ routing id is who sent it.
    """

    nodes: frozenset[str] = frozenset()  # the dataflow's nodes this daemon runs
    by_identity: dict[bytes, str] = field(default_factory=dict)
    # Nodes that registered without announcing their second socket (older nodes): what it
    # sends (close-time NodeStats, NodeClosing, RequestStop) cannot be told from a forgery.
    unverified: set[str] = field(default_factory=set)

    def bind(self, node: str, identities: list[bytes], announced: bool) -> None:
        """``identities`` are now ``node``'s, and only they (a node registering again)."""
        for ident in [i for i, n in self.by_identity.items() if n == node]:
            del self.by_identity[ident]
        for ident in identities:
            self.by_identity[ident] = node
        if announced:
            self.unverified.discard(node)
        else:
            self.unverified.add(node)


@dataclass(slots=True)
class DataflowState:
    """What this daemon knows of one dataflow it runs nodes for."""

    id: str
    name: str
    yaml: str
    descriptor: Dataflow
    working_dir: Path
    ipc_dir: Path
    nodes: list[str]
    multi_machine: bool
    peers: dict[str, bytes] = field(default_factory=dict)  # node -> control identity (replies)
    senders: Senders = field(default_factory=Senders)
    last_peers: ctl.Peers | None = None
    stopping: str = ""
    grace_s: float = 10.0
    live: set[str] = field(default_factory=set)
    # Every UpstreamExited relayed so far, replayed to nodes that register later: a node still
    # importing its libraries when an upstream already ended (e.g. a short shell script) must
    # learn whether that upstream failed, not only that it is gone (``Peers.exited``).
    exits: list[ctl.UpstreamExited] = field(default_factory=list)
    # node -> the one-time token its process got in DORA_ZMQ_NODE_TOKEN, until it registers.
    tokens: dict[str, str] = field(default_factory=dict)
    registered: set[str] = field(default_factory=set)  # spawned nodes that used their token
    reader_secret: str = ""  # from the coordinator: reader tokens are derived from it
    # Run from a shipped copy (in ipc_dir/work, removed with it) rather than the CLI's folder;
    # until the copy is unpacked (``waiting_for_folder``) no node is spawned.
    shipped: bool = False
    waiting_for_folder: bool = False
    trace_context: str = ""
    restarts: RestartBook | None = None  # restart_policy records (a pending restart keeps a node live)

    def note_exit(self, msg: ctl.UpstreamExited) -> bool:
        """Record a relayed exit; False if it is a copy already known (the coordinator resends
        exits a heartbeat did not acknowledge, see ``DaemonHeartbeat.exits``)."""
        if msg in self.exits:
            return False
        self.exits.append(msg)
        return True

    def reader_token(self, node: str) -> str:
        """``node``'s data-plane reader token ("" if the coordinator sent no secret)."""
        if not self.reader_secret:
            return ""
        return hmac.new(self.reader_secret.encode(), f"{self.id}\0{node}".encode(), "sha256").hexdigest()[:32]


def check_token(df: DataflowState, msg: ctl.RegisterNode) -> str:
    """Why this cannot be the process spawned as ``msg.node`` ("" if it is, or the node is dynamic).

    A process this daemon spawned registers once, with the token it was given (a restarted
    node is a new process with a new token): an impostor
    registering as it (before or after it) would receive its setup and speak for it.
    """
    if df.descriptor.node(msg.node).kind is NodeKind.DYNAMIC:
        return ""
    if msg.node in df.registered:
        return f"node '{msg.node}' has registered already; a node started by the daemon registers once"
    expected = df.tokens.get(msg.node)
    if expected is None:
        return f"node '{msg.node}' was not started by this daemon (or failed to start)"
    if not hmac.compare_digest(expected.encode(), msg.token.encode()):
        return f"node '{msg.node}' is started by the daemon: only that process (it has {ctl.ENV_NODE_TOKEN}) can register as it"
    del df.tokens[msg.node]
    df.registered.add(msg.node)
    return ""


def check_identities(df: DataflowState, node: str, peer: bytes, sender: bytes) -> str:
    """Why a registration's connections cannot be ``node``'s ("" if they can)."""
    for ident, what in ((peer, "this connection"), (sender, "the announced sender identity")):
        owner = df.senders.by_identity.get(ident) if ident else None
        if owner is not None and owner != node:
            return f"{what} is node '{owner}' of this dataflow already"
    if sender and (sender == peer or len(sender) > 255 or sender.startswith(b"\0")):
        # ZeroMQ reserves routing ids starting with a zero byte for the ones it assigns.
        return f"invalid sender identity {sender!r} (1 to 255 bytes, not starting with a zero byte, not the registering connection's)"
    return ""
