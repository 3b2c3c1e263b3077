"""The daemon takes a node's reports only from that node's own control sockets.

A node registers on one DEALER socket (``RegisterNode``, then ``NodeBound`` and periodic
``NodeStats``) and announces a second one (``close()`` and ``request_dataflow_stop()`` send
from the user's thread). A message naming another node, or coming from a connection no node
registered, is dropped with a warning; the dataflow goes on. Real sockets throughout: an
in-process daemon between a stand-in coordinator and stand-in nodes, then a real ``run``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from dora_zmq import _control as ctl
from dora_zmq._transport import Channel
from dora_zmq.testing import write_dataflow

from ._rig import QUIET, DaemonRig

pytestmark = pytest.mark.timeout(60)

_YAML = """
nodes:
  - id: a
    path: dynamic
    outputs: [out]
  - id: b
    path: dynamic
    inputs: {x: a/out}
  - id: c
    path: dynamic
"""
_BOGUS = ctl.NodeEndpoint("elsewhere", "ipc:///nonexistent/forged.sock", "tcp://203.0.113.1:1")


class _Warnings(logging.Handler):
    """The daemon's warnings, waited for as they come (no sleeps)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self._cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._cond:
            self.lines.append(record.getMessage())
            self._cond.notify_all()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 10.0) -> list[str]:
        rx = re.compile(pattern)
        with self._cond:
            ok = self._cond.wait_for(lambda: len([ln for ln in self.lines if rx.search(ln)]) >= count, timeout)
            found = [ln for ln in self.lines if rx.search(ln)]
        assert ok, f"no {count} warning(s) matching {pattern!r}; warnings: {self.lines}"
        return found


class _Rig(DaemonRig):
    """An in-process daemon, a stand-in coordinator (a ROUTER), and one running dataflow."""

    def __init__(self) -> None:
        self.channels: list[Channel] = []
        super().__init__(tcp_bind="127.0.0.1")
        try:
            self.daemon_peer = self.peer
            self.ipc, self.tcp = self.hello.node_addresses
            self.df = f"df-{uuid.uuid4().hex[:8]}"
            self.coordinator.send(
                ctl.SpawnNodes(self.df, "identity", _YAML, str(Path.cwd()), ["a", "b", "c"]), to=self.daemon_peer
            )
        except BaseException:
            self.close()
            raise

    def to_coordinator_until(self, kind: type, timeout_s: float = 10.0) -> list[Any]:
        """What the daemon told the coordinator, up to and including the next ``kind``."""
        seen = []
        while True:
            got = self.coordinator.recv(int(timeout_s * 1000))
            assert got is not None, f"the coordinator got no {kind.__name__} within {timeout_s} s; got {seen}"
            if not isinstance(got[1], QUIET):
                seen.append(got[1])
            if isinstance(got[1], kind):
                return seen

    def connect(self, address: str, identity: str | None = None) -> Channel:
        ch = Channel.connect(address, identity=identity)
        self.channels.append(ch)
        return ch

    def close(self) -> None:
        for ch in self.channels:
            ch.close()
        super().close()
        assert not self.daemon.run_dir.exists()


class _FakeNode:
    """A node's control plane as ``Node`` runs it: a registered socket and an announced one."""

    def __init__(self, rig: _Rig, node: str, address: str, announce: bool = True) -> None:
        self.node = node
        self.ctrl = rig.connect(address)
        self.tx_identity = f"test-tx/{node}/{uuid.uuid4().hex}" if announce else ""
        self.setup = register(self.ctrl, rig.df, node, self.tx_identity)
        self.tx = rig.connect(address, identity=self.tx_identity or None)


def register(ch: Channel, df: str, node: str, sender_identity: str = "") -> Any:
    """RegisterNode until the daemon knows the dataflow (SpawnNodes travels on another socket)."""
    for _ in range(200):  # each try waits for the daemon's answer; it soon has read SpawnNodes
        reply = ch.request(ctl.RegisterNode(df, node, os.getpid(), ctl.PROTOCOL_VERSION, sender_identity), 10.0)
        if not (isinstance(reply, ctl.RegisterRefused) and "is not part of" in reply.error):
            return reply
    raise AssertionError(f"node {node} never registered: {reply!r}")


@pytest.fixture
def rig() -> Iterator[_Rig]:
    r = _Rig()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def warnings() -> Iterator[_Warnings]:
    handler = _Warnings()
    logger = logging.getLogger("dora_zmq.daemon._daemon")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_forged_node_bound_and_stats_are_dropped_and_the_real_ones_pass(rig: _Rig, warnings: _Warnings) -> None:
    a = _FakeNode(rig, "a", rig.ipc)
    b = _FakeNode(rig, "b", rig.tcp)  # an edge node: registers over tcp
    assert isinstance(a.setup, ctl.NodeSetup) and isinstance(b.setup, ctl.NodeSetup)
    stranger = rig.connect(rig.ipc)  # a connection no node registered

    b.ctrl.send(ctl.NodeBound(rig.df, "a", _BOGUS))
    stranger.send(ctl.NodeBound(rig.df, "a", _BOGUS))
    b.tx.send(ctl.NodeStats(rig.df, "a", {"x": 999}, None))
    stranger.send(ctl.NodeStats(rig.df, "a", {"x": 998}, None))
    stranger.send(ctl.NodeClosing(rig.df, "b", "forged"))
    found = warnings.wait_for(r"dropped (NodeBound|NodeStats|NodeClosing) claiming to come from node '(a|b)'", count=5)
    assert sum("which is node 'b'" in w for w in found) == 2, found
    assert sum("which is no node of that dataflow" in w for w in found) == 3, found

    # Everything forged was read (and warned about) before these are sent: had any of it been
    # forwarded, the coordinator would see it first.
    a.ctrl.send(ctl.NodeBound(rig.df, "a", ctl.NodeEndpoint("", "ipc:///real/a.sock")))
    a.ctrl.send(ctl.NodeStats(rig.df, "a", {"x": 1}, None))  # periodic: on the registered socket
    a.tx.send(ctl.NodeStats(rig.df, "a", {"x": 2}, None))  # at close: on the announced one
    seen = rig.to_coordinator_until(ctl.NodeStats)
    seen += rig.to_coordinator_until(ctl.NodeStats)
    expected = [
        ctl.NodeReady(rig.df, "a", ctl.NodeEndpoint("", "ipc:///real/a.sock")),
        ctl.NodeStats(rig.df, "a", {"x": 1}, None),
        ctl.NodeStats(rig.df, "a", {"x": 2}, None),
    ]
    assert sorted(map(repr, seen)) == sorted(map(repr, expected))  # two sockets: no order between them

    # The dataflow goes on: the endpoint table reaches both nodes, a dynamic node leaves.
    peers = ctl.Peers(rig.df, {"a": ctl.NodeEndpoint("", "ipc:///real/a.sock")}, [])
    rig.coordinator.send(peers, to=rig.daemon_peer)
    for node in (a, b):
        got = node.ctrl.recv(10_000)
        assert got is not None and got[1] == peers
    a.tx.send(ctl.NodeClosing(rig.df, "a", ""))
    (exited,) = rig.to_coordinator_until(ctl.NodeExited)
    assert (exited.node, exited.failed) == ("a", False)


def test_a_registration_cannot_take_another_nodes_sockets(rig: _Rig, warnings: _Warnings) -> None:
    a = _FakeNode(rig, "a", rig.ipc)
    reply = register(a.ctrl, rig.df, "b")  # a's connection registering as b
    assert isinstance(reply, ctl.RegisterRefused) and "is node 'a'" in reply.error, reply
    reply = register(rig.connect(rig.ipc), rig.df, "b", a.tx_identity)  # claiming a's second socket
    assert isinstance(reply, ctl.RegisterRefused) and "is node 'a'" in reply.error, reply
    warnings.wait_for(r"refused node 'b'", count=2)
    # b can still register properly, and a's sockets are still a's.
    b = _FakeNode(rig, "b", rig.ipc)
    assert isinstance(b.setup, ctl.NodeSetup)
    a.tx.send(ctl.NodeStats(rig.df, "a", {"x": 3}, None))
    assert rig.to_coordinator_until(ctl.NodeStats) == [ctl.NodeStats(rig.df, "a", {"x": 3}, None)]


def test_a_node_that_announces_no_second_socket_still_reports(rig: _Rig, warnings: _Warnings) -> None:
    """Older nodes send their last reports from a socket they never announced: still taken,
    but only those reports, and never NodeBound."""
    c = _FakeNode(rig, "c", rig.ipc, announce=False)
    c.tx.send(ctl.NodeBound(rig.df, "c", _BOGUS))
    warnings.wait_for(r"dropped NodeBound claiming to come from node 'c'")
    c.tx.send(ctl.NodeStats(rig.df, "c", {"x": 4}, None))
    assert rig.to_coordinator_until(ctl.NodeStats) == [ctl.NodeStats(rig.df, "c", {"x": 4}, None)]


_SOURCE = """
from dora_zmq import Node
import pyarrow as pa

node = Node()
sent = 0
for event in node:
    if event["type"] == "INPUT":
        sent += 1
        node.send_output("value", pa.array([sent]))
        if sent == 20:
            break
"""

_SINK = """
from dora_zmq import Node

node = Node()
got = [event["value"].to_pylist()[0] for event in node if event["type"] == "INPUT"]
print(f"sink got {got}", flush=True)
"""

# Speaks the control protocol itself: registers as itself, then claims to be other nodes.
_FORGER = """
import os

from dora_zmq import _control as ctl
from dora_zmq._transport import Channel

address, df, me = os.environ["DORA_ZMQ_DAEMON"], os.environ["DORA_DATAFLOW_ID"], os.environ["DORA_NODE_ID"]
bogus = ctl.NodeEndpoint("elsewhere", "ipc:///nonexistent/forged.sock", "")
own = Channel.connect(address)
token = os.environ[ctl.ENV_NODE_TOKEN]  # it is the process the daemon started for it
registered = own.request(ctl.RegisterNode(df, me, os.getpid(), ctl.PROTOCOL_VERSION, "", token), 20)
assert isinstance(registered, ctl.NodeSetup)
own.send(ctl.NodeBound(df, "source", bogus))
own.send(ctl.NodeStats(df, "sink", {"value": 4242}, None))
stranger = Channel.connect(address)
stranger.send(ctl.NodeBound(df, "sink", bogus))
for ch in (own, stranger):
    ch.close(2000)
print("forger: sent", flush=True)
"""


def test_a_node_forging_other_nodes_reports_changes_nothing(dora, tmp_path: Path) -> None:
    flow = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: source
            path: source.py
            inputs: {tick: dora/timer/millis/10}
            outputs: [value]
          - id: sink
            path: sink.py
            inputs: {value: source/value}
          - id: forger
            path: forger.py
        """,
        files={"source.py": _SOURCE, "sink.py": _SINK, "forger.py": _FORGER},
    )
    result = dora("run", str(flow)).wait(45)
    assert result.returncode == 0, result.output
    assert f"sink got {list(range(1, 21))}" in result.stdout, result.output
    out = result.output
    assert re.search(r"dropped NodeBound claiming to come from node 'source' .* which is node 'forger'", out), out
    assert re.search(r"dropped NodeStats claiming to come from node 'sink' .* which is node 'forger'", out), out
    assert re.search(
        r"dropped NodeBound claiming to come from node 'sink' .* which is no node of that dataflow", out
    ), out
    assert "4242" not in out, out  # the forged drop count never reached the coordinator
