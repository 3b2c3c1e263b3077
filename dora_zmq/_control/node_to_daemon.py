"""What a node tells its daemon (``NodeStats`` and ``RequestStop`` are shared)."""

from __future__ import annotations

from ._codec import control_message
from .records import NodeEndpoint

__all__ = ["NodeBound", "NodeClosing", "RegisterNode"]


@control_message
class RegisterNode:
    """Hello from a node process, on the control socket it registers (its replies go there).

    ``sender_identity``: the ZeroMQ routing id of the node's second control socket, the one
    ``close()`` and ``request_dataflow_stop()`` send on from the user's thread. The daemon
    accepts a node's reports only from these two sockets; "" (older nodes) leaves the second
    one unverified.

    ``token``: for a node the daemon spawned, the one-time token it found in
    ``DORA_ZMQ_NODE_TOKEN``; such a node registers once, and only with it.
    """

    dataflow_id: str
    node: str
    pid: int
    protocol: int
    sender_identity: str = ""
    token: str = ""


@control_message
class NodeBound:
    """The node's publisher is bound here."""

    dataflow_id: str
    node: str
    endpoint: NodeEndpoint


@control_message
class NodeClosing:
    """The node sent its end-of-stream markers and is closing; ``error`` set if it crashed."""

    dataflow_id: str
    node: str
    error: str = ""
    inputs_closed: bool = False  # it had inputs and all of them closed: restart_policy stops here
