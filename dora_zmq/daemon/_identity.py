"""Identity policy: who the daemon is to the coordinator, and who may speak for which node.

A node's messages name the node they are about; that is a claim. What counts is the ZeroMQ
routing id of the connection it came on (set at registration, ``Senders``), the one-time
token a spawned process was given, and, with CURVE, the key the connection presented. The
functions here decide; the daemon's event loop logs what they say and answers the peer.

Threading: no state of its own. The functions read (and ``check_token`` updates) a
``DataflowState``, which belongs to the daemon's event-loop thread, the only caller.
"""

from __future__ import annotations

import hmac
import os
import secrets
import socket
from collections.abc import Iterable, Mapping

from .. import _control as ctl
from ..descriptor import NodeKind
from ..security import TRUSTED, Peer, Role
from ._state import DataflowState, Senders

__all__ = [
    "ROUTING_TOKEN_BYTES",
    "check_identities",
    "check_token",
    "control_identity",
    "find_dynamic",
    "key_refusal",
    "sender_refusal",
]

#: Random bytes in the daemon's routing id: the coordinator's socket hands an identity to
#: whoever connects with it (so a reconnecting daemon keeps its place), so it must be unguessable.
ROUTING_TOKEN_BYTES = 16
#: Longest sender identity a node may announce: ZeroMQ's limit on a routing id.
_ROUTING_ID_MAX = 255


def control_identity(machine_id: str) -> str:
    """The routing id of a daemon's connection to the coordinator: readable, and unguessable."""
    return f"daemon/{machine_id}/{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(ROUTING_TOKEN_BYTES)}"


def find_dynamic(dataflows: Iterable[DataflowState], node: str) -> DataflowState | None:
    """The running (not stopping) dataflow in which ``node`` is a ``path: dynamic`` node, if any."""
    for df in dataflows:
        if node in df.nodes and df.descriptor.node(node).kind is NodeKind.DYNAMIC and not df.stopping:
            return df
    return None


def key_refusal(sender: Peer, msg: object, dataflows: Mapping[str, DataflowState]) -> str:
    """Why the connection's key may not speak as the node ``msg`` names ("" if it may; see README, roles).

    Nodes this daemon spawns run with its daemon key. A ``node`` key (an edge device) is
    named after the one dynamic node it may run as; an operator key is no node at all.
    """
    if sender == TRUSTED or sender.may(Role.DAEMON):
        return ""
    node = getattr(msg, "node", None)
    if not sender.may(Role.NODE):
        return f"it has {sender.describe()}, not a node or daemon key"
    if node != sender.name:
        return f"a node key named '{sender.name}' may only run node '{sender.name}'"
    df = dataflows.get(getattr(msg, "dataflow_id", ""))
    if df is None and isinstance(msg, ctl.RegisterNode):
        df = find_dynamic(dataflows.values(), node)
    if df is not None and node in df.nodes and df.descriptor.node(node).kind is not NodeKind.DYNAMIC:
        return f"node '{node}' is started by the daemon; a node key runs only `path: dynamic` nodes"
    return ""


def sender_refusal(
    senders: Senders | None, peer: bytes, msg: object, df_id: str, node: str, *, unverified_ok: bool
) -> str:
    """Why ``peer`` may not send ``msg`` as ``node`` of ``df_id`` ("" if it may).

    Args:
        senders: who speaks for the nodes of ``df_id`` (None: this daemon runs no such dataflow).
        unverified_ok: accept a connection that is no node's from a node that did not
            announce its second socket (older nodes send their last reports from there).
    """
    kind = type(msg).__name__
    if senders is None:
        return (
            f"daemon dropped {kind} for node '{node}': this daemon runs no dataflow {df_id} "
            f"(sent by connection {peer!r})"
        )
    owner = senders.by_identity.get(peer)
    if owner == node or (owner is None and unverified_ok and node in senders.unverified):
        return ""
    actual = f"node '{owner}'" if owner is not None else "no node of that dataflow"
    if node not in senders.nodes:
        return (
            f"daemon dropped {kind}: this daemon runs no node '{node}' in dataflow {df_id} "
            f"(sent by connection {peer!r}, which is {actual})"
        )
    return (
        f"daemon dropped {kind} claiming to come from node '{node}' of dataflow {df_id}: "
        f"it was sent by connection {peer!r}, which is {actual}"
    )


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
        return (
            f"node '{msg.node}' is started by the daemon: "
            f"only that process (it has {ctl.ENV_NODE_TOKEN}) can register as it"
        )
    del df.tokens[msg.node]
    df.registered.add(msg.node)
    return ""


def check_identities(df: DataflowState, node: str, peer: bytes, sender: bytes) -> str:
    """Why a registration's connections cannot be ``node``'s ("" if they can)."""
    for ident, what in ((peer, "this connection"), (sender, "the announced sender identity")):
        owner = df.senders.by_identity.get(ident) if ident else None
        if owner is not None and owner != node:
            return f"{what} is node '{owner}' of this dataflow already"
    if sender and (sender == peer or len(sender) > _ROUTING_ID_MAX or sender.startswith(b"\0")):
        # ZeroMQ reserves routing ids starting with a zero byte for the ones it assigns.
        return (
            f"invalid sender identity {sender!r} "
            "(1 to 255 bytes, not starting with a zero byte, not the registering connection's)"
        )
    return ""
