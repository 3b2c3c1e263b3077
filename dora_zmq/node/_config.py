"""How a node process finds its daemon: the environment variables a daemon sets."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .._errors import NodeConfigError

__all__ = ["ENV_DAEMON", "ENV_DATAFLOW", "ENV_MACHINE", "ENV_NODE", "NodeEnvironment"]

ENV_DAEMON = "DORA_ZMQ_DAEMON"
ENV_NODE = "DORA_NODE_ID"
ENV_DATAFLOW = "DORA_DATAFLOW_ID"
ENV_MACHINE = "DORA_ZMQ_MACHINE"

_HOW_TO_RUN = (
    "This script is a dora_zmq node: start it through a dataflow, e.g. `dora-zmq run dataflow.yml` "
    "with the script listed as a node's `path:`. To start a node by hand, declare it "
    "`path: dynamic` in the YAML, start the dataflow, then run this script with "
    f"{ENV_DAEMON}=<daemon address> {ENV_DATAFLOW}=<dataflow id> and Node(\"<node id>\")."
)


@dataclass(frozen=True, slots=True)
class NodeEnvironment:
    """The daemon address, dataflow and node id a node starts with."""

    daemon: str
    node_id: str
    dataflow_id: str
    spawned: bool

    @classmethod
    def from_env(cls, node_id: str | None = None) -> "NodeEnvironment":
        """Read the environment; ``node_id`` given means a dynamic node started by hand.

        Raises:
            NodeConfigError: when the variables are missing, with how to run the node.
        """
        env_node = os.environ.get(ENV_NODE)
        daemon = os.environ.get(ENV_DAEMON)
        if node_id is None and env_node is None:
            raise NodeConfigError(f"no node id: {ENV_NODE} is not set. {_HOW_TO_RUN}")
        if not daemon:
            raise NodeConfigError(f"no daemon address: {ENV_DAEMON} is not set. {_HOW_TO_RUN}")
        spawned = node_id is None or node_id == env_node
        return cls(
            daemon=daemon,
            node_id=node_id or env_node or "",
            dataflow_id=os.environ.get(ENV_DATAFLOW, ""),
            spawned=spawned and env_node is not None,
        )
