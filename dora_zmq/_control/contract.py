"""The process contract between a daemon and the nodes it starts, written once.

A daemon starts each node with these environment variables set; the node reads them back
(``dora_zmq.node._config``). Both ends import the names from here, so they cannot drift apart.
The reason a node is asked to stop travels as the ``id`` of its STOP event: :class:`StopReason`
names them for the daemon (``StopNode.reason``, ``StopDataflow.reason``) and the node alike.

It also states the deadline of each phase of a dataflow's life (README: "Deadlines"), so that
the coordinator that enforces one and the daemon or node whose work it bounds agree on it.
"""

from __future__ import annotations

import os

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
    "KILL_AFTER_TERM_S",
    "MACHINE_WAIT_S",
    "START_CONFIRM_S",
    "STOP_MARGIN_S",
    "STREAM_END_DRAIN_S",
    "StopReason",
    "stop_bound",
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


# ---- deadlines (README: "Deadlines") ------------------------------------------------------
#
# Each phase ends by itself within its bound, whatever the network does: what has not happened
# by then is reported (which node, which machine, why) instead of being waited for.


def _seconds(env: str, default: float) -> float:
    """A bound in seconds from ``$env`` (``default`` when unset or not a positive number)."""
    try:
        value = float(os.environ.get(env, default))
    except ValueError:
        return default
    return value if value > 0 else default


#: Placement: a dataflow that names a machine with no daemon connected fails after this long
#: (``DORA_ZMQ_MACHINE_WAIT``), saying which machine and the command that starts its daemon.
MACHINE_WAIT_S = _seconds("DORA_ZMQ_MACHINE_WAIT", 10.0)
#: Start-up: a node whose daemon has not confirmed its process (a resource sample, its
#: registration or its exit) this long after the nodes were sent to it (or after the last
#: chunk of a shipped folder arrived there) fails the dataflow (``DORA_ZMQ_SPAWN_TIMEOUT``).
#: Generous: 100 Python nodes take about 7 s to spawn on 2 busy cores.
START_CONFIRM_S = _seconds("DORA_ZMQ_SPAWN_TIMEOUT", 60.0)
#: End of a stream: after an upstream's exit notice, an input waits this long (since the last
#: message that came from it) for the rest of its messages, then closes and counts the rest
#: as lost in transit (``node._stream_end``).
STREAM_END_DRAIN_S = 1.0
#: The stop ladder's last step: a node still running this long after SIGTERM gets SIGKILL.
KILL_AFTER_TERM_S = 2.0
#: Stop, beyond the grace period and the ladder: reaping, the exit reports' way to the
#: coordinator, a loaded machine (``DORA_ZMQ_STOP_MARGIN``).
STOP_MARGIN_S = _seconds("DORA_ZMQ_STOP_MARGIN", 5.0)


def stop_bound(grace_s: float) -> float:
    """How long a ``stopping`` dataflow may take at most: ``grace_s`` (STOP to SIGTERM), the
    ladder (SIGTERM to SIGKILL) and the margin. Nodes whose exit is not confirmed by then are
    reported as unconfirmed and the dataflow ends."""
    return max(0.0, grace_s) + KILL_AFTER_TERM_S + STOP_MARGIN_S
