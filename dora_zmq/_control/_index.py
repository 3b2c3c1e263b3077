"""Which module of the control plane defines each message type, written once.

The package loads a direction's module when one of its names is first used (a node imports
the two node <-> daemon modules, not the CLI's or the coordinator's), and the codec loads the
module of a type tag it has not seen yet. ``tests/unit/test_control_codec.py`` checks this
table against every module's ``__all__``.
"""

from __future__ import annotations

#: Direction module (relative to ``dora_zmq._control``) -> the names it defines.
DIRECTIONS: dict[str, tuple[str, ...]] = {
    ".cli_to_coordinator": (
        "Attach",
        "BundleChunk",
        "Destroy",
        "FetchLogs",
        "GetNodeStats",
        "GetStatus",
        "ListDataflows",
        "OfferBundle",
        "Ping",
        "ResolveNode",
        "StartDataflow",
        "StopDataflow",
        "WaitForSpawn",
    ),
    ".coordinator_to_cli": (
        "BundleWanted",
        "CoordinatorStatus",
        "DataflowList",
        "DataflowResult",
        "DataflowStarted",
        "Failed",
        "LogLine",
        "NodeDaemon",
        "NodeStatsList",
        "Ok",
        "Pong",
    ),
    ".coordinator_to_daemon": (
        "BundleUnavailable",
        "DaemonAccepted",
        "ExitReported",
        "Peers",
        "Probe",
        "ShutdownDaemon",
        "SpawnNodes",
        "StopNodes",
        "UpstreamExited",
        "UpstreamRestarted",
    ),
    ".daemon_to_coordinator": (
        "HEARTBEAT_INTERVAL_S",
        "HEARTBEAT_ID_SUFFIX",
        "DaemonExiting",
        "DaemonHeartbeat",
        "FetchBundle",
        "NodeExited",
        "NodeLogs",
        "NodeReady",
        "NodeResources",
        "NodeRestarting",
        "NodeStats",
        "RegisterDaemon",
        "RequestStop",
    ),
    ".daemon_to_node": ("NodeSetup", "RegisterRefused", "StopNode"),
    ".node_to_daemon": ("NodeBound", "NodeClosing", "RegisterNode"),
}

#: Name -> its direction module.
WHERE: dict[str, str] = {name: module for module, names in DIRECTIONS.items() for name in names}
