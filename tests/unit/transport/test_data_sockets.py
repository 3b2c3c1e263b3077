"""Data-plane sockets (XPUB publisher, XSUB subscriber) and the relay, with real sockets over ipc:
framing, topic filtering, subscriptions seen by the publisher, upstream messages, options."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import zmq

from dora_zmq._errors import ControlError
from dora_zmq._transport import Publisher, Relay, Subscriber, ipc_endpoint
from dora_zmq._transport._options import CONNECT_TIMEOUT_MS, HEARTBEAT_IVL_MS, HEARTBEAT_TIMEOUT_MS, HWM
from dora_zmq._wire import MARKER_PREFIX, decode_frames, encode_data_frames, encode_topic, marker_topic

pytestmark = pytest.mark.timeout(30)

WAIT_MS = 5000


@pytest.fixture
def pub(tmp_path: Path) -> Iterator[Publisher]:
    p = Publisher(ipc_endpoint(str(tmp_path), "pub"))
    try:
        yield p
    finally:
        p.close(0)


@pytest.fixture
def sub() -> Iterator[Subscriber]:
    s = Subscriber()
    try:
        yield s
    finally:
        s.close()


def _subscriptions(pub: Publisher, count: int) -> list[bytes]:
    """The next ``count`` subscription messages the publisher hears (waits for them)."""
    got: list[bytes] = []
    while len(got) < count:
        assert pub.socket.poll(WAIT_MS), f"only {got} arrived"
        got += pub.read_subscriptions()
    return got


def _recv(sub: Subscriber) -> list[zmq.Frame]:
    assert sub.socket.poll(WAIT_MS), "nothing arrived"
    frames = sub.recv_nowait()
    assert frames is not None
    return frames


def _attached(pub: Publisher, sub: Subscriber, *topics: bytes) -> None:
    """Subscribe to ``topics`` and wait until the publisher heard every one (then nothing is lost)."""
    sub.connect(pub.ipc)
    for topic in topics:
        sub.subscribe(topic)
    assert _subscriptions(pub, len(topics)) == [b"\x01" + t for t in topics]


def test_a_data_message_arrives_frame_for_frame(pub: Publisher, sub: Subscriber) -> None:
    topic = encode_topic("cam", "image")
    _attached(pub, sub, topic)
    value = pa.array(range(1000), type=pa.int64())
    pub.send(encode_data_frames(topic, 7, value, {"k": "v"}))
    frames = _recv(sub)
    assert len(frames) == 4 and frames[0].bytes == topic
    message = decode_frames(frames)
    assert message.seq == 7 and message.metadata == {"k": "v"}
    assert message.value is not None and message.value.equals(value)


def test_topics_filter_by_whole_name(pub: Publisher, sub: Subscriber) -> None:
    wanted, other = encode_topic("cam", "image"), encode_topic("cam", "image2")
    _attached(pub, sub, wanted)
    pub.send([other, b"h", b"", b"not for us"])
    pub.send([wanted, b"h", b"", b"for us"])
    frames = _recv(sub)
    assert [f.bytes for f in frames] == [wanted, b"h", b"", b"for us"]
    assert sub.recv_nowait() is None


def test_pending_says_whether_a_message_waits_without_reading_it(pub: Publisher, sub: Subscriber) -> None:
    topic = encode_topic("cam", "image")
    _attached(pub, sub, topic)
    assert not sub.pending()
    pub.send([topic, b"h", b"", b"one"])
    assert sub.socket.poll(WAIT_MS), "nothing arrived"
    assert sub.pending() and sub.pending()  # asking reads nothing
    frames = sub.recv_nowait()
    assert frames is not None and frames[-1].bytes == b"one"
    assert not sub.pending() and sub.recv_nowait() is None


def test_the_publisher_hears_every_subscription_and_marker(pub: Publisher, tmp_path: Path) -> None:
    # XPUB_VERBOSER: two subscribers of the same topic are two messages (the start barrier counts them)
    subs = [Subscriber(), Subscriber()]
    try:
        topic = encode_topic("a", "out")
        for s in subs:
            s.connect(pub.ipc)
            s.subscribe(topic)
            s.subscribe(marker_topic("reader"))
        got = _subscriptions(pub, 4)
        assert sorted(got) == sorted([b"\x01" + topic, b"\x01" + MARKER_PREFIX + b"reader"] * 2)
        assert pub.read_subscriptions() == []  # nothing waiting: no exception, an empty list
        assert not pub.manual  # without CURVE every subscription applies at once
    finally:
        for s in subs:
            s.close()


def test_upstream_messages_reach_the_publisher(pub: Publisher, sub: Subscriber) -> None:
    _attached(pub, sub, b"t\0")
    sub.send_upstream(b"\x02rel:reader\0descriptor")
    assert _subscriptions(pub, 1) == [b"\x02rel:reader\0descriptor"]


def test_connect_once_and_only_to_data_endpoints(pub: Publisher, sub: Subscriber) -> None:
    sub.connect(pub.ipc)
    sub.connect(pub.ipc)  # a no-op the second time
    sub.connect("")  # no address: nothing to do
    assert sub.connected == {pub.ipc}
    for bad in ("inproc://x", "udp://1.2.3.4:5", "relay"):
        with pytest.raises(ControlError, match="not a data endpoint"):
            sub.connect(bad)
    with pytest.raises(ControlError, match="cannot connect"):
        sub.connect("tcp://no port")
    assert sub.connected == {pub.ipc}


def test_bind_ipc_and_tcp(tmp_path: Path) -> None:
    p = Publisher(ipc_endpoint(str(tmp_path), "both"), tcp_bind="tcp://127.0.0.1:0")
    s = Subscriber()
    try:
        assert p.ipc == f"ipc://{tmp_path}/both.sock"
        assert p.tcp.startswith("tcp://127.0.0.1:") and not p.tcp.endswith(":0")
        s.connect(p.tcp)
        s.subscribe(b"t\0")
        assert _subscriptions(p, 1) == [b"\x01t\0"]
        p.send([b"t\0", b"over tcp"])
        assert [f.bytes for f in _recv(s)] == [b"t\0", b"over tcp"]
    finally:
        s.close()
        p.close(0)
    with pytest.raises(ControlError, match="cannot bind node publisher"):
        Publisher("", tcp_bind="tcp://256.0.0.1:1")


def test_socket_options(pub: Publisher, sub: Subscriber) -> None:
    for sock in (pub.socket, sub.socket):
        assert sock.getsockopt(zmq.HEARTBEAT_IVL) == HEARTBEAT_IVL_MS
        assert sock.getsockopt(zmq.HEARTBEAT_TIMEOUT) == HEARTBEAT_TIMEOUT_MS
        assert sock.getsockopt(zmq.CONNECT_TIMEOUT) == CONNECT_TIMEOUT_MS
    assert pub.socket.getsockopt(zmq.SNDHWM) == HWM
    assert sub.socket.getsockopt(zmq.RCVHWM) == HWM
    assert sub.socket.getsockopt(zmq.LINGER) == 0


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_large_messages_after_many_small_ones_all_arrive(tmp_path: Path, transport: str) -> None:
    """The high-water marks stay fixed: libzmq 4.3.5 stalls a connection for good when its mark is
    lowered below the messages not yet acknowledged on it (this lost everything after the first
    16 MiB message once 64 small ones had gone before)."""
    p = Publisher(ipc_endpoint(str(tmp_path), "mixed"), tcp_bind="tcp://127.0.0.1:0" if transport == "tcp" else "")
    s = Subscriber()
    try:
        s.connect(p.tcp or p.ipc)
        s.subscribe(b"t\0")
        assert _subscriptions(p, 1) == [b"\x01t\0"]
        sizes = [8] * 500 + [16 * 1024 * 1024] * 3 + [409_600] * 5 + [8] * 500
        got: list[int] = []
        for i, size in enumerate(sizes):
            assert p.send([b"t\0", bytes([i % 251]) * size])
            if size > 8:  # one at a time: what is measured is the socket, not a full queue
                while len(got) <= i:
                    got.append(len(_recv(s)[-1]))
        while len(got) < len(sizes):
            got.append(len(_recv(s)[-1]))
        assert got == sizes
        assert p.socket.getsockopt(zmq.SNDHWM) == HWM and s.socket.getsockopt(zmq.RCVHWM) == HWM
    finally:
        s.close()
        p.close(0)


def test_bytes_in_flight_are_bounded_and_refusals_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A subscriber that never reads: the publisher holds at most 4 x DORA_ZMQ_QUEUE_BYTES of bodies."""
    monkeypatch.setenv("DORA_ZMQ_QUEUE_BYTES", str(1024 * 1024))  # 4 MiB in flight
    p = Publisher("", tcp_bind="tcp://127.0.0.1:0")
    ctx = zmq.Context.instance()
    stuck = ctx.socket(zmq.SUB)  # raw: reads nothing, queues one message, so TCP fills and stays full
    stuck.setsockopt(zmq.RCVHWM, 1)
    stuck.setsockopt(zmq.RCVBUF, 64 * 1024)
    stuck.setsockopt(zmq.SUBSCRIBE, b"")
    try:
        stuck.connect(p.tcp)
        assert _subscriptions(p, 1) == [b"\x01"]
        body = b"x" * (1024 * 1024)
        sent = [p.send([b"t\0", body]) for _ in range(64)]
        assert p.in_flight.bytes <= p.in_flight.budget == 4 * 1024 * 1024
        assert not all(sent) and p.in_flight.refused == sent.count(False) > 0
        stuck.close(0)  # the connection goes; ZeroMQ drops what it held, and the bytes come back
        deadline = time.monotonic() + 10
        while p.in_flight.bytes and time.monotonic() < deadline:
            p.read_subscriptions()  # a socket applies ZeroMQ's commands (here: a pipe's end) when used
            time.sleep(0.02)
        assert p.in_flight.bytes == 0
        assert p.send([b"t\0", body])
    finally:
        stuck.close(0)
        p.close(0)


def test_ipc_endpoint_keeps_under_the_socket_path_limit(tmp_path: Path) -> None:
    assert ipc_endpoint("/tmp", "n") == "ipc:///tmp/n.sock"
    deep = "/tmp/" + "d" * 70
    name = "node-with-a-long-name-that-would-pass-the-limit"
    long = ipc_endpoint(deep, name)
    assert long.startswith(f"ipc://{deep}/") and long.endswith(".sock")
    assert len(long) - len("ipc://") <= 100 and "node-with" not in long
    # the same name, the same path, in every process (hash() of a str differs between processes)
    code = f"from dora_zmq._transport import ipc_endpoint; print(ipc_endpoint({deep!r}, {name!r}))"
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        other = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True
        )
        assert other.stdout.strip() == long


def test_the_relay_carries_subscriptions_up_and_data_down(tmp_path: Path) -> None:
    relay = Relay(f"ipc://{tmp_path}/relay-pub.sock", f"ipc://{tmp_path}/relay-sub.sock")
    serving = threading.Thread(target=relay.serve_forever, name="relay", daemon=True)
    serving.start()
    p = Publisher("", relay=relay.publishers)  # outbound only: no address of its own
    s = Subscriber()
    try:
        assert p.ipc == "" and p.tcp == ""
        s.connect(relay.subscribers)
        s.subscribe(b"t\0")
        s.subscribe(marker_topic("reader"))
        got = _subscriptions(p, 2)  # through the relay, markers included (verbose at both hops)
        assert got == [b"\x01t\0", b"\x01" + MARKER_PREFIX + b"reader"]
        frames: list[Any] = [b"t\0", b"head", b"", b"body"]
        p.send(frames)
        assert [f.bytes for f in _recv(s)] == frames
    finally:
        relay.request_stop()
        serving.join(5)
        s.close()
        p.close(0)
    assert not serving.is_alive()
    assert relay.forwarded == 3  # two subscriptions up, one message down (read once its thread ended)
    relay.close()  # idempotent after serve_forever closed the sockets


def test_a_relay_that_cannot_listen_is_a_control_error(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="relay cannot listen"):
        Relay(f"ipc://{tmp_path}/ok.sock", "tcp://256.0.0.1:1")
