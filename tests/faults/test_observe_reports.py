"""Reports behind ``status`` and ``top`` are taken only from whom they concern.

A real coordinator (on a thread) and two fake daemons on DEALER sockets, as a broken or
hostile peer would connect: a daemon's process samples count only for the nodes placed on it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from dora_zmq import _control as ctl
from dora_zmq._transport import Channel
from dora_zmq._version import __version__
from dora_zmq.coordinator import Coordinator

YAML = """
nodes:
  - id: arm_node
    path: node.py
    deploy: {machine: arm}
"""


@pytest.fixture
def coordinator() -> Iterator[Coordinator]:
    coord = Coordinator("tcp://127.0.0.1:0")
    thread = threading.Thread(target=coord.serve_forever, daemon=True)
    thread.start()
    yield coord
    coord.request_shutdown()
    thread.join(5)
    assert not thread.is_alive()


def _daemon(address: str, machine: str) -> Channel:
    channel = Channel.connect(address, identity=f"daemon/{machine}/test")
    reply = channel.request(ctl.RegisterDaemon(machine, __version__, ctl.PROTOCOL_VERSION, "host", 1, []), 5)
    assert reply == ctl.DaemonAccepted()
    return channel


def _handled(channel: Channel) -> None:
    """What ``channel`` sent before is handled: a coordinator reads one connection in order."""
    channel.send(ctl.Ping())
    while (got := channel.recv(5000)) is not None and not isinstance(got[1], ctl.Pong):
        pass  # a daemon also gets Peers and the like
    assert got is not None, "no Pong"


def _stats(cli: Channel, ref: str = "") -> Any:
    return cli.request(ctl.GetNodeStats(ref), 5)


@pytest.mark.timeout(30)
def test_process_samples_count_only_from_the_nodes_daemon(coordinator: Coordinator, tmp_path: Path) -> None:
    arm = _daemon(coordinator.address, "arm")
    other = _daemon(coordinator.address, "other")
    cli = Channel.connect(coordinator.address)
    try:
        started = cli.request(ctl.StartDataflow(YAML, "", str(tmp_path), "demo"), 5)
        df = started.dataflow_id
        spawn = arm.recv(5000)
        assert spawn is not None and isinstance(spawn[1], ctl.SpawnNodes) and spawn[1].nodes == ["arm_node"]
        assert cli.request(ctl.WaitForSpawn(df), 5) == ctl.Ok("1 node on machine arm")

        # Another daemon speaks for a node it does not run: ignored.
        other.send(ctl.NodeResources("other", [ctl.ProcessSample(df, "arm_node", 999, 99.0, 1, 7)]))
        other.send(ctl.NodeResources("other", [ctl.ProcessSample(df, "ghost", 998, 1.0, 1, 0)]))  # no such node
        other.send(ctl.NodeStats(df, "arm_node", {"x": 666}, None, {"x": 666}, {}, {}))
        _handled(other)
        (record,) = _stats(cli).nodes
        assert (record.node, record.machine, record.pid, record.restarts) == ("arm_node", "arm", 0, 0)
        assert record.stats_age_s == -1.0 and record.drops == {}  # no counters reported yet (by the right daemon)
        assert cli.request(ctl.ListDataflows(), 5).dataflows[0].drops == {}

        # Its own daemon does.
        arm.send(ctl.NodeResources("arm", [ctl.ProcessSample(df, "arm_node", 123, 5.5, 4096, 1)]))
        arm.send(ctl.NodeStats(df, "arm_node", {"x": 2}, {"x": 0}, {"x": 10}, {"y": 9}, {"x": 1}))
        _handled(arm)
        (record,) = _stats(cli, "demo").nodes
        assert (record.pid, record.cpu_percent, record.rss_bytes, record.restarts) == (123, 5.5, 4096, 1)
        assert (record.received, record.sent, record.queued, record.drops) == ({"x": 10}, {"y": 9}, {"x": 1}, {"x": 2})
        assert 0 <= record.stats_age_s < 5

        refused = _stats(cli, "nosuch")
        assert isinstance(refused, ctl.Failed) and "no dataflow 'nosuch'" in refused.message
        status = cli.request(ctl.GetStatus(), 5)
        assert [(d.machine_id, d.nodes_running) for d in status.daemons] == [("arm", 1), ("other", 0)]
    finally:
        for channel in (arm, other, cli):
            channel.close()
