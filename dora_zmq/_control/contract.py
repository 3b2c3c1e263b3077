"""The process contract between a daemon and the nodes it starts, written once.

A daemon starts each node with these environment variables set; the node reads them back
(``dora_zmq.node._config``). Both ends import the names from here, so they cannot drift apart.
The reason a node is asked to stop travels as the ``id`` of its STOP event: :class:`StopReason`
names them for the daemon (``StopNode.reason``, ``StopDataflow.reason``) and the node alike.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_COORDINATOR",
    "DEFAULT_PORT",
    "ENV_ADVERTISE",
    "ENV_BIND",
    "ENV_COORDINATOR",
    "ENV_DAEMON",
    "ENV_DATAFLOW",
    "ENV_MACHINE",
    "ENV_NODE",
    "ENV_NODE_TOKEN",
    "ENV_RELAY",
    "StopReason",
]

#: The daemon's node-facing control address.
ENV_DAEMON = "DORA_ZMQ_DAEMON"
#: The node's id in its dataflow (dora's name).
ENV_NODE = "DORA_NODE_ID"
#: The dataflow's id (dora's name).
ENV_DATAFLOW = "DORA_DATAFLOW_ID"
#: The machine id of the daemon that started the node.
ENV_MACHINE = "DORA_ZMQ_MACHINE"
#: Where a node without a daemon (``path: dynamic``) and the CLI find the coordinator.
ENV_COORDINATOR = "DORA_ZMQ_COORDINATOR"
#: The interface a node binds its publisher to (default all).
ENV_BIND = "DORA_ZMQ_BIND"
#: The address a node advertises to its receivers (default: the one towards its daemon).
ENV_ADVERTISE = "DORA_ZMQ_ADVERTISE"
#: Relay addresses a node's receivers on other networks reach it through.
ENV_RELAY = "DORA_ZMQ_RELAY"
#: A one-time registration token a daemon gives each node it spawns: only the process holding
#: it can register as that node, and only once.
ENV_NODE_TOKEN = "DORA_ZMQ_NODE_TOKEN"

#: The coordinator's control port when none is configured (images EXPOSE it too).
DEFAULT_PORT = 53290
#: The coordinator's control address when none is configured.
DEFAULT_COORDINATOR = f"tcp://127.0.0.1:{DEFAULT_PORT}"


class StopReason:
    """The ``id`` of a STOP event: why the node is asked to stop."""

    MANUAL = "MANUAL"
    ALL_INPUTS_CLOSED = "ALL_INPUTS_CLOSED"
    DAEMON_LOST = "DAEMON_LOST"
    INTERNAL_ERROR = "INTERNAL_ERROR"  # the node's receiver failed (a bug): see the ERROR event
