"""What a daemon knows of each dataflow it runs nodes for, and who may speak for its nodes.

Records only: the checks made against them are in ``._identity``.

Owned by the daemon's event-loop thread (``Daemon.serve_forever``); nothing here is shared.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _control as ctl
from ..descriptor import Dataflow
from ._restart import RestartBook

__all__ = ["DataflowState", "Senders"]


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
    plain: dict[str, Any] | None = None  # the descriptor as its nodes get it (descriptor._plain), made once

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
