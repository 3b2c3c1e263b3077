"""The control messages behind ``status``, ``top`` and ``logs``: round trips, and nonsense refused."""

from __future__ import annotations

import pytest

from dora_zmq import _control as ctl
from dora_zmq._errors import ProtocolError

INFO = ctl.DataflowInfo(
    "id", "demo", "failed", {"a": "failed"}, [ctl.FailureRecord("a", reason="r")], {}, 1.0, {}, "why", 2.0, {"a": "m"}
)
DAEMON = ctl.DaemonInfo("arm", "host", 7, "0.1.0", "10.0.0.7", ["ipc:///d"], 0.2, 30.0, 3)
STATS = ctl.NodeStatsRecord(
    "id", "demo", "a", "arm", "running", 7, 12.5, 4096, 1, {"x": 3}, {"y": 2}, {"x": 1}, {"x": 0}, {"x": 0}, 0.4
)


@pytest.mark.parametrize(
    "msg",
    [
        ctl.GetStatus(),
        ctl.GetNodeStats("demo"),
        ctl.WaitForSpawn("demo"),
        ctl.FetchLogs("demo", "", True, 5, True, 123.5),
        ctl.CoordinatorStatus("tcp://h:1", "0.1.0", 12.0, [DAEMON], [INFO]),
        ctl.NodeStatsList(1.0, [STATS]),
        ctl.NodeResources("arm", [ctl.ProcessSample("id", "a", 7, 0.0, 1, 0)]),
        ctl.NodeStats("id", "a", {"x": 1}, None, {"x": 5}, {"y": 4}, {"x": 0}),
        ctl.LogLine("id", "a", "text", "dora", 12.25),
        ctl.DataflowStarted("id", "demo", 10.0),
        ctl.RegisterDaemon("arm", "0.1.0", ctl.PROTOCOL_VERSION, "host", 3, [], "10.0.0.7"),
    ],
)
def test_round_trip(msg: object) -> None:
    assert ctl.decode(ctl.encode(msg)) == msg


def test_older_peers_messages_still_decode() -> None:
    """Fields added for observation have defaults: what older peers send stays valid."""
    assert ctl.decode(b'{"t": "NodeStats", "dataflow_id": "d", "node": "n", "drops": {}}').received is None
    assert ctl.decode(b'{"t": "LogLine", "dataflow_id": "d", "node": "n", "line": "x"}').time == 0.0
    assert ctl.decode(b'{"t": "FetchLogs", "dataflow": "d", "node": "n"}').since == 0.0


@pytest.mark.parametrize(
    "raw",
    [
        b'{"t": "NodeResources", "machine_id": "m", "samples": {"a": 1}}',  # list expected
        b'{"t": "NodeResources", "machine_id": "m", "samples": '
        b'[{"dataflow_id": "d", "node": "n", "pid": "7", "cpu_percent": 1, "rss_bytes": 1}]}',
        b'{"t": "NodeStats", "dataflow_id": "d", "node": "n", "drops": {}, "sent": {"y": "many"}}',
        b'{"t": "FetchLogs", "dataflow": "d", "node": "n", "since": "yesterday"}',
        b'{"t": "GetNodeStats", "dataflow": 5}',
    ],
)
def test_malformed_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        ctl.decode(raw)
