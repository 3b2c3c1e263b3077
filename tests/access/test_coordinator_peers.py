"""The coordinator takes each message only from the connection entitled to send it.

An in-process coordinator with real sockets; stand-in daemons and a stranger are DEALER
sockets speaking the control protocol. Each forgery is followed by a request on the same
connection, so its answer proves the forgery was handled (a connection's messages arrive in
order), and the dataflow's state shows it changed nothing.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from dora_zmq import _control as ctl
from dora_zmq._transport import Channel
from dora_zmq.coordinator import Coordinator

pytestmark = pytest.mark.timeout(60)

_YAML = """
nodes:
  - id: cam
    path: cam.py
    outputs: [image]
    deploy: {machine: cam}
  - id: arm
    path: arm.py
    inputs: {image: cam/image}
    deploy: {machine: arm}
"""
_EVIL = ctl.NodeEndpoint("evil", "ipc:///tmp/evil.sock", "tcp://203.0.113.66:1")


class _Rig:
    def __init__(self) -> None:
        self.coordinator = Coordinator("tcp://127.0.0.1:0")
        self.thread = threading.Thread(target=self.coordinator.serve_forever, daemon=True)
        self.thread.start()
        self.channels: list[Channel] = []

    def connect(self) -> Channel:
        ch = Channel.connect(self.coordinator.address)
        self.channels.append(ch)
        return ch

    def daemon(self, machine: str) -> Channel:
        ch = self.connect()
        reply = ch.request(ctl.RegisterDaemon(machine, "test", ctl.PROTOCOL_VERSION, "host", os.getpid()), 10)
        assert reply == ctl.DaemonAccepted(), reply
        return ch

    def nodes(self, df: str) -> dict[str, str]:
        flows = self.connect().request(ctl.ListDataflows(), 10).dataflows
        return next(d.nodes for d in flows if d.id == df)

    def close(self) -> None:
        self.coordinator.request_shutdown()
        self.thread.join(10)
        for ch in self.channels:
            ch.close()


def _expect(ch: Channel, kind: type) -> Any:
    while True:
        got = ch.recv(10_000)
        assert got is not None, f"no {kind.__name__}"
        if isinstance(got[1], kind):
            return got[1]


def _ping(ch: Channel) -> None:
    """Ping and wait for the Pong: everything this connection sent before has been handled."""
    ch.send(ctl.Ping())
    _expect(ch, ctl.Pong)


@pytest.fixture
def rig() -> Iterator[_Rig]:
    r = _Rig()
    try:
        yield r
    finally:
        r.close()


def _start(rig: _Rig) -> tuple[Channel, Channel, str]:
    cam, arm = rig.daemon("cam"), rig.daemon("arm")
    started = rig.connect().request(ctl.StartDataflow(_YAML, "", str(Path.cwd()), "forgery"), 10)
    assert isinstance(started, ctl.DataflowStarted), started
    assert _expect(cam, ctl.SpawnNodes).nodes == ["cam"]
    assert _expect(arm, ctl.SpawnNodes).nodes == ["arm"]
    return cam, arm, started.dataflow_id


def test_node_reports_from_a_stranger_or_another_daemon_change_nothing(rig: _Rig) -> None:
    cam, arm, df = _start(rig)
    stranger = rig.connect()
    for ch in (stranger, arm):  # arm is a daemon, but cam does not run on it
        ch.send(ctl.NodeReady(df, "cam", _EVIL))
        ch.send(ctl.NodeExited(df, "cam", 1, None, True, "forged"))
        ch.send(ctl.NodeStats(df, "arm" if ch is stranger else "cam", {"image": 4242}, None))
        _ping(ch)  # the forgeries were handled
    assert rig.nodes(df) == {"cam": "spawning", "arm": "spawning"}
    info = rig.connect().request(ctl.ListDataflows(), 10).dataflows[0]
    assert info.failures == [] and info.drops == {}, info

    # The real reports, from the daemons the nodes run on, are taken.
    cam.send(ctl.NodeReady(df, "cam", ctl.NodeEndpoint("cam", "ipc:///tmp/cam.sock", "")))
    peers = _expect(arm, ctl.Peers)
    assert peers.endpoints["cam"].ipc == "ipc:///tmp/cam.sock"
    assert "evil" not in str(peers)
    arm.send(ctl.NodeStats(df, "arm", {"image": 3, "nonsense": 9}, None))
    _ping(arm)
    info = rig.connect().request(ctl.ListDataflows(), 10).dataflows[0]
    assert info.drops == {"arm/image": 3}, info  # undeclared inputs are not kept


def test_a_second_daemon_for_a_live_machine_id_is_refused_until_the_first_is_gone(rig: _Rig) -> None:
    cam, _arm, df = _start(rig)
    impostor = rig.connect()
    reply = impostor.request(ctl.RegisterDaemon("cam", "test", ctl.PROTOCOL_VERSION, "evil", 1), 10)
    assert "machine id 'cam' is taken by a running daemon (host host" in reply.error, reply
    # The impostor is no daemon: its reports are refused, the real daemon's node untouched.
    impostor.send(ctl.NodeExited(df, "cam", 1, None, True, "forged"))
    _ping(impostor)
    assert rig.nodes(df)["cam"] == "spawning"
    # The next dataflow's nodes go to the real daemon.
    rig.connect().request(ctl.StartDataflow(_YAML, "", str(Path.cwd()), "second"), 10)
    assert _expect(cam, ctl.SpawnNodes).name == "second"

    cam.close()  # the real daemon is gone: its machine id may be taken again
    successor = rig.connect()
    for _ in range(500):  # until the coordinator's socket has seen the connection close
        reply = successor.request(ctl.RegisterDaemon("cam", "test", ctl.PROTOCOL_VERSION, "host", 2), 10)
        if not reply.error:
            break
    assert reply == ctl.DaemonAccepted(), reply


def test_an_oversized_control_message_is_refused_by_the_socket(rig: _Rig, caplog: pytest.LogCaptureFixture) -> None:
    from dora_zmq._transport import _channel

    limit = getattr(_channel, "MAX_CONTROL_MESSAGE", 8 * 1024 * 1024)
    big = rig.connect()
    big.socket.send(b"{" + b" " * limit + b"}")  # the socket drops the connection
    _ping(big)  # answered after the reconnection (and, before the limit, after decoding 8 MiB)
    assert "malformed" not in caplog.text, caplog.text


def test_a_daemons_connection_cannot_be_taken_over_by_guessing_its_routing_id(rig: _Rig, tmp_path: Path) -> None:
    """The coordinator's socket hands a routing id to whoever connects with it (so a daemon that
    reconnects keeps its place): a daemon's id must not be guessable, or a stranger takes its
    connection and receives its next SpawnNodes (the YAML, with its env: secrets)."""
    import socket

    from dora_zmq.daemon import Daemon

    daemon = Daemon(rig.coordinator.address, "cam", tcp_bind="127.0.0.1")
    thread = threading.Thread(target=daemon.serve_forever, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if "cam" in rig.connect().request(ctl.Ping(), 10).daemons:
                break
        guessed = f"daemon/cam/{socket.gethostname()}/{os.getpid()}"  # machine id, host and pid
        thief = Channel.connect(rig.coordinator.address, identity=guessed)
        rig.channels.append(thief)
        _ping(thief)
        yaml = "nodes:\n  - id: cam\n    path: missing.py\n    env: {API_KEY: s3cret}\n    deploy: {machine: cam}\n"
        started = rig.connect().request(ctl.StartDataflow(yaml, "", str(tmp_path), "secret"), 10)
        # The real daemon got SpawnNodes: it reports the node failed (its path does not exist).
        for _ in range(1000):
            info = next(
                d for d in rig.connect().request(ctl.ListDataflows(), 10).dataflows if d.id == started.dataflow_id
            )
            if info.status == "failed":
                break
        assert info.status == "failed" and "missing.py" in info.failures[0].reason, info
        assert thief.recv(0) is None  # the thief got nothing
    finally:
        daemon.request_shutdown(0.0)
        thread.join(15)
