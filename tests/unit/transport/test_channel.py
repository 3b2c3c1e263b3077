"""Control channels (ROUTER server, DEALER client) and the poller, with real sockets over ipc."""

from __future__ import annotations

import errno
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from dora_zmq import _control as ctl
from dora_zmq._errors import ControlError
from dora_zmq._transport import Channel, Poller, Wakeup, context
from dora_zmq._transport._channel import MAX_CONTROL_MESSAGE
from dora_zmq._transport._options import CONNECT_TIMEOUT_MS, HEARTBEAT_IVL_MS, HEARTBEAT_TIMEOUT_MS
from dora_zmq.security import TRUSTED

pytestmark = pytest.mark.timeout(30)

WAIT_MS = 5000  # a bound on every wait for a message that must arrive


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Channel, Channel]]:
    server = Channel.serve(f"ipc://{tmp_path}/ctl.sock")
    client = Channel.connect(server.address)
    try:
        yield server, client
    finally:
        client.close()
        server.close()


def test_request_and_reply_with_the_sender(pair: tuple[Channel, Channel]) -> None:
    server, client = pair
    assert client.send(ctl.Ping())
    got = server.recv_from(WAIT_MS)
    assert got is not None
    peer, sender, message = got
    assert message == ctl.Ping() and sender is TRUSTED  # no CURVE: every role
    assert peer  # the client's routing id, to answer it
    assert server.send(ctl.Ok("pong"), to=peer)
    answer = client.recv(WAIT_MS)
    assert answer == (b"", ctl.Ok("pong"))  # a client's peer is always b""


def test_request_waits_for_the_one_reply(pair: tuple[Channel, Channel]) -> None:
    server, client = pair
    # One thread plays both ends: the server's answer is queued before the client asks again.
    client.send(ctl.Ping())
    got = server.recv(WAIT_MS)
    assert got is not None
    server.send(ctl.Ok("first"), to=got[0])
    assert client.request(ctl.Ping(), timeout_s=5) == ctl.Ok("first")
    with pytest.raises(ControlError, match="no answer from"):
        client.request(ctl.Ping(), timeout_s=0.05)  # nothing answers this one


def test_timeouts_and_nowait(pair: tuple[Channel, Channel]) -> None:
    server, _ = pair
    assert server.recv(0) is None
    assert server.recv_nowait() is None
    assert server.recv(10) is None


def test_malformed_messages_are_counted_and_skipped(tmp_path: Path) -> None:
    server = Channel.serve(f"ipc://{tmp_path}/ctl.sock")
    raw = context().socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    try:
        raw.connect(server.address)
        for junk in (b"not json", b'{"t":"NoSuchMessage"}', b'{"t":"Ok","message":3}', b"[]"):
            raw.send(junk)
        raw.send(ctl.encode(ctl.Ok("after the junk")))
        # A malformed message uses up recv's wait (it then only takes what is already there),
        # so wait again until the good one arrived.
        deadline = time.monotonic() + WAIT_MS / 1000
        got = None
        while got is None and time.monotonic() < deadline:
            got = server.recv(WAIT_MS)
        assert got is not None and got[1] == ctl.Ok("after the junk")
        assert server.malformed == 4
    finally:
        raw.close(0)
        server.close()


def test_a_server_send_to_a_gone_or_missing_peer(pair: tuple[Channel, Channel]) -> None:
    server, _ = pair
    assert server.send(ctl.Ok(), to=b"nobody") is False  # ROUTER_MANDATORY: reported, not dropped silently
    with pytest.raises(ValueError, match="needs a peer"):
        server.send(ctl.Ok())


def test_server_options(pair: tuple[Channel, Channel]) -> None:
    server, client = pair
    s = server.socket
    assert s.getsockopt(zmq.MAXMSGSIZE) == MAX_CONTROL_MESSAGE
    assert s.getsockopt(zmq.HEARTBEAT_IVL) == HEARTBEAT_IVL_MS
    assert s.getsockopt(zmq.HEARTBEAT_TIMEOUT) == HEARTBEAT_TIMEOUT_MS
    assert s.getsockopt(zmq.LINGER) == 0
    c = client.socket
    assert c.getsockopt(zmq.MAXMSGSIZE) == MAX_CONTROL_MESSAGE
    assert c.getsockopt(zmq.HEARTBEAT_IVL) == HEARTBEAT_IVL_MS
    assert c.getsockopt(zmq.CONNECT_TIMEOUT) == CONNECT_TIMEOUT_MS
    assert server.server and not client.server


def test_routing_ids_are_random_unless_given(tmp_path: Path) -> None:
    address = f"ipc://{tmp_path}/x.sock"
    a, b, named = Channel.connect(address), Channel.connect(address), Channel.connect(address, "daemon/m1/abc")
    try:
        ids = [ch.socket.getsockopt(zmq.ROUTING_ID) for ch in (a, b, named)]
        assert ids[0] != ids[1] and all(i.startswith(b"peer/") and len(i) == 5 + 32 for i in ids[:2])
        assert ids[2] == b"daemon/m1/abc"
    finally:
        for ch in (a, b, named):
            ch.close()


def test_an_address_in_use_or_invalid_is_a_control_error(pair: tuple[Channel, Channel]) -> None:
    server, _ = pair
    on_tcp = Channel.serve("tcp://127.0.0.1:0")  # (ZeroMQ lets a second ipc bind take the path over)
    try:
        with pytest.raises(ControlError, match="another coordinator or daemon"):
            Channel.serve(on_tcp.address)
    finally:
        on_tcp.close()
    with pytest.raises(ControlError, match="invalid address"):
        Channel.connect("nonsense")
    with pytest.raises(ControlError, match="cannot listen"):
        server.bind("tcp://256.1.1.1:1")


def test_bind_a_second_address_reports_the_real_port(pair: tuple[Channel, Channel]) -> None:
    server, _ = pair
    bound = server.bind("tcp://127.0.0.1:0")
    assert bound.startswith("tcp://127.0.0.1:") and not bound.endswith(":0")
    client = Channel.connect(bound)
    try:
        client.send(ctl.Ping())
        assert server.recv(WAIT_MS) is not None
    finally:
        client.close()


def test_close_is_idempotent(tmp_path: Path) -> None:
    ch = Channel.connect(f"ipc://{tmp_path}/y.sock")
    ch.close()
    ch.close()
    assert ch.socket.closed


def test_poller_returns_the_ready_members(pair: tuple[Channel, Channel]) -> None:
    server, client = pair
    wake = Wakeup()
    poller = Poller([server, wake])
    try:
        assert poller.wait(0) == []
        client.send(ctl.Ping())
        assert poller.wait(WAIT_MS) == [server]
        assert server.recv_nowait() is not None
        wake.notify()
        wake.notify()
        assert poller.wait(WAIT_MS) == [wake]
        wake.clear()  # both wake-ups consumed at once
        assert poller.wait(0) == []
        poller.remove(server)
        client.send(ctl.Ping())
        assert poller.wait(50) == []  # not watched any more
    finally:
        wake.close()
        wake.close()  # idempotent


def test_poller_wait_interrupted_by_a_signal_is_an_empty_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    poller = Poller()

    def interrupted(timeout: Any = None) -> Any:
        raise zmq.ZMQError(errno.EINTR)

    monkeypatch.setattr(poller._poller, "poll", interrupted)
    assert poller.wait(10) == []  # was an AttributeError: pyzmq has no zmq.EINTR

    def failed(timeout: Any = None) -> Any:
        raise zmq.ZMQError(errno.ENOTSOCK)

    monkeypatch.setattr(poller._poller, "poll", failed)
    with pytest.raises(zmq.ZMQError):
        poller.wait(10)
