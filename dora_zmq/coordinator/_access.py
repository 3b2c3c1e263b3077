"""Who may send what to the coordinator: the role a message needs, and whose reports are whose.

Every check uses the connection a message came on -- its ZeroMQ routing id and the CURVE key
that opened it -- never what the message says about itself:

* CLI requests (start, stop, list, logs, attach, destroy, top's node stats, uploading a
  dataflow's folder) need the ``operator`` role; ``status`` needs the operator or the daemon
  role (a daemon's healthcheck runs it with the daemon's keys).
* ``RegisterDaemon`` needs the ``daemon`` role, and a ``daemon`` key registers only the
  machine id it is named after (or the default machine): a stolen key of one machine cannot
  collect another machine's nodes. A machine id held by a live connection is refused (the
  daemon there keeps its place) until that connection is gone.
* Daemon reports (heartbeats, node ready/exited/logs/stats/resources, stop requests, fetching
  a shipped folder) are taken only from
  the connection the daemon registered on, with the key it registered with, and only about
  nodes the coordinator placed on that daemon.
* ``Ping`` and ``ResolveNode`` (how a dynamic node finds its daemon) need any role; a ``node``
  key resolves only the node it is named after.

Without CURVE every connection has every role, and the per-connection checks still hold.
This is per connection, not per message, so resent or acknowledged reports (a later protocol)
are checked the same way.
"""

from __future__ import annotations

from typing import Any

from .. import _control as ctl
from ..security import Peer, Role

__all__ = ["DAEMON_REPORTS", "refusal"]

_OPERATOR_REQUESTS = (
    ctl.StartDataflow,
    ctl.StopDataflow,
    ctl.ListDataflows,
    ctl.Attach,
    ctl.FetchLogs,
    ctl.Destroy,
    ctl.WaitForSpawn,
    ctl.GetNodeStats,
    ctl.OfferBundle,
    ctl.BundleChunk,
)
#: Sent by a registered daemon only, on the connection it registered on.
DAEMON_REPORTS = (
    ctl.DaemonHeartbeat,
    ctl.DaemonExiting,
    ctl.NodeReady,
    ctl.NodeExited,
    ctl.NodeLogs,
    ctl.NodeStats,
    ctl.NodeResources,
    ctl.RequestStop,
    ctl.FetchBundle,
)


def refusal(sender: Peer, msg: Any) -> str:
    """Why ``sender``'s key may not send ``msg`` at all ("" if its role allows it)."""
    if isinstance(msg, _OPERATOR_REQUESTS) and not sender.may(Role.OPERATOR):
        return f"{type(msg).__name__} needs an operator key; this connection has {sender.describe()}"
    if isinstance(msg, ctl.GetStatus) and not (sender.may(Role.OPERATOR) or sender.may(Role.DAEMON)):
        return f"GetStatus needs an operator or a daemon key; this connection has {sender.describe()}"
    if isinstance(msg, (ctl.RegisterDaemon, *DAEMON_REPORTS)) and not sender.may(Role.DAEMON):
        return f"{type(msg).__name__} needs a daemon key; this connection has {sender.describe()}"
    if (
        isinstance(msg, ctl.RegisterDaemon)
        and sender.roles == {Role.DAEMON}
        and msg.machine_id not in ("", sender.name)
    ):
        return (
            f"a daemon key named '{sender.name}' may only register machine id '{sender.name}', not '{msg.machine_id}'"
        )
    if isinstance(msg, ctl.ResolveNode) and sender.roles == {Role.NODE} and msg.node != sender.name:
        return f"a node key named '{sender.name}' may only run node '{sender.name}', not '{msg.node}'"
    return ""
