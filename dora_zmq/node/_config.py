"""How a node process finds its daemon: the environment variables a daemon sets."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .._control import (
    DEFAULT_COORDINATOR,
    ENV_COORDINATOR,
    ENV_DAEMON,
    ENV_DATAFLOW,
    ENV_NODE,
    ENV_NODE_TOKEN,
    ENV_RELAY,
)
from .._errors import NodeConfigError

__all__ = ["DataflowId", "NodeEnvironment", "relay_addresses"]


_HOW_TO_RUN = (
    "This script is a dora_zmq node: start it through a dataflow, e.g. `dora-zmq run dataflow.yml` "
    "with the script listed as a node's `path:`. To start a node by hand, declare it "
    "`path: dynamic` in the YAML, start the dataflow, then create the node with "
    'Node("<node id>") (and DORA_ZMQ_COORDINATOR=tcp://<coordinator host>:53290 if it is not local).'
)


def relay_addresses() -> tuple[str, str] | None:
    """``DORA_ZMQ_RELAY=tcp://host:PUB_PORT,tcp://host:SUB_PORT`` -> (publish to, subscribe at).

    Raises:
        NodeConfigError: the variable is set but not two comma-separated addresses.
    """
    value = os.environ.get(ENV_RELAY, "").strip()
    if not value:
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2 or not all(p.startswith("tcp://") for p in parts):
        raise NodeConfigError(
            f"{ENV_RELAY}={value!r}: expected two tcp addresses, the relay's publisher and "
            "subscriber sides, e.g. tcp://relay:53291,tcp://relay:53292 (see `dora-zmq relay`)"
        )
    return parts[0], parts[1]


@dataclass(frozen=True, slots=True)
class NodeEnvironment:
    """The daemon address, dataflow and node id a node starts with."""

    daemon: str
    node_id: str
    dataflow_id: str
    spawned: bool
    coordinator: str = ""
    token: str = ""  # the daemon's one-time registration token (spawned nodes)

    @classmethod
    def from_env(cls, node_id: str | None = None, coordinator: str | None = None) -> "NodeEnvironment":
        """Read the environment; ``node_id`` given means a dynamic node started by hand.

        A dynamic node without ``DORA_ZMQ_DAEMON`` asks the coordinator (``coordinator``,
        else ``$DORA_ZMQ_COORDINATOR``, else the local default) where to register.

        Raises:
            NodeConfigError: when the variables are missing, with how to run the node.
        """
        env_node = os.environ.get(ENV_NODE)
        daemon = os.environ.get(ENV_DAEMON)
        if node_id is None and env_node is None:
            raise NodeConfigError(f"no node id: {ENV_NODE} is not set. {_HOW_TO_RUN}")
        if not daemon and node_id is not None:
            return cls(
                "",
                node_id,
                os.environ.get(ENV_DATAFLOW, ""),
                False,
                coordinator or os.environ.get(ENV_COORDINATOR) or DEFAULT_COORDINATOR,
            )
        if not daemon:
            raise NodeConfigError(f"no daemon address: {ENV_DAEMON} is not set. {_HOW_TO_RUN}")
        spawned = node_id is None or node_id == env_node
        # Taken out of the environment: the node's own child processes have no use for it.
        token = os.environ.pop(ENV_NODE_TOKEN, "") if spawned else ""
        return cls(
            daemon=daemon,
            node_id=node_id or env_node or "",
            dataflow_id=os.environ.get(ENV_DATAFLOW, ""),
            spawned=spawned and env_node is not None,
            token=token,
        )


class DataflowId(str):
    """A dataflow id that is also callable: ``node.dataflow_id()`` (dora) and ``node.dataflow_id``."""

    __slots__ = ()

    def __call__(self) -> str:
        return str(self)
