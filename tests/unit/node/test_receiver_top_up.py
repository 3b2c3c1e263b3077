"""``Session.top_up``: a node busy with queued events still drains its socket and sends releases.

Real ZeroMQ sockets in one process; the session's receiver thread is not started, so only the
calls made here move messages.
"""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pytest

from dora_zmq._shm import ShmDescriptor
from dora_zmq._transport import Channel, Publisher, Subscriber, ipc_endpoint
from dora_zmq._wire import encode_data_frames, parse_release
from dora_zmq.node._events import Event, EventQueue
from dora_zmq.node._receiver import ReceiverSetup, Route
from dora_zmq.node._session import Session

TOPIC = b"src/out\0"


@pytest.fixture
def wired(tmp_path: Path):
    pub = Publisher(ipc_endpoint(str(tmp_path), "pub"))
    sub = Subscriber()
    sub.connect(pub.ipc)
    sub.subscribe(TOPIC)
    daemon = Channel.serve(ipc_endpoint(str(tmp_path), "ctl"))
    ctrl = Channel.connect(daemon.address)
    deadline = time.monotonic() + 10
    while not any(m[1:] == TOPIC for m in pub.read_subscriptions()):  # the subscription arrived
        assert time.monotonic() < deadline, "subscription never reached the publisher"
        pub.socket.poll(100)
    queue = EventQueue({"in": 1000})
    session = Session(ReceiverSetup("dst", {TOPIC: Route("src", ["in"])}), sub, ctrl, queue, _NoSender())
    try:
        yield pub, sub, session, queue
    finally:
        session.close()  # never started: closes the sockets here
        daemon.close()
        pub.close(0)


class _NoSender:
    """A node with no outputs: the receive step has nothing to tell its sending side."""

    def post_peers(self, peers: object) -> None:
        pass

    def sent_counts(self) -> dict[str, int]:
        return {}

    def reclaim(self) -> None:
        pass


@pytest.mark.timeout(30)
def test_waiting_messages_move_into_the_queue_while_it_has_events(wired) -> None:
    pub, sub, receiver, queue = wired
    queue.push_input("in", Event(type="INPUT", id="in", value=pa.array([-1]), metadata={}))  # the node is busy
    for i in range(100):
        pub.send(encode_data_frames(TOPIC, i, pa.array([i]), {"i": i}))
    got: list[int] = []
    deadline = time.monotonic() + 10
    while len(got) < 101:
        assert time.monotonic() < deadline, f"only {len(got)} events after top-ups"
        sub.socket.poll(100)
        receiver.top_up()
        while (event := queue.get()) is not None:
            got.append(event["value"][0].as_py())
    assert got == [-1, *range(100)]  # all of them, in order, none lost


@pytest.mark.timeout(30)
def test_releases_leave_on_a_top_up(wired) -> None:
    pub, _, receiver, _ = wired
    descs = [ShmDescriptor("dora-zmq-df-src-1-0", 64 + i * 1024, 100, 7 + i, 1) for i in range(3)]
    for d in descs:
        receiver.receiver.on_release(d)  # what the application dropping a shared-memory value does
    receiver.top_up()
    deadline = time.monotonic() + 10
    releases = []
    while not releases:
        assert time.monotonic() < deadline, "no release reached the publisher"
        pub.socket.poll(100)
        releases = [r for m in pub.read_subscriptions() if (r := parse_release(m)) is not None]
    reader, raw = releases[0]
    assert reader == "dst" and ShmDescriptor.decode_all(raw) == descs  # one message for all three
