"""Records shared by several control directions."""

from __future__ import annotations

from ._codec import control_message

__all__ = ["DataflowInfo", "FailureRecord", "NodeEndpoint"]


@control_message
class NodeEndpoint:
    """Where a node's publisher can be reached: ipc for same-machine peers, tcp across hosts."""

    machine: str
    ipc: str
    tcp: str = ""

    def for_peer(self, peer_machine: str) -> str:
        """The address a subscriber on ``peer_machine`` should connect to."""
        if peer_machine == self.machine or not self.tcp:
            return self.ipc
        return self.tcp


@control_message
class FailureRecord:
    """A failed node, as carried on the wire (see ``dora_zmq.NodeFailure``)."""

    node: str
    exit_code: int | None = None
    signal: int | None = None
    stderr_tail: str = ""
    reason: str = ""
    machine: str = ""


@control_message
class DataflowInfo:
    """One row of ``dora-zmq list``."""

    id: str
    name: str
    status: str
    nodes: dict[str, str]
    failures: list[FailureRecord]
    drops: dict[str, int]
    started_at: float = 0.0
    lost: dict[str, int] | None = None
    restarts: dict[str, int] | None = None  # node -> times restarted (restart_policy)
