"""ZeroMQ's data queues are bounded in bytes: a subscriber that never reads costs its publisher
about 4 x DORA_ZMQ_QUEUE_BYTES (at least 64 messages), not 10,000 messages of whatever size
(60 GB for 6 MB frames)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dora_zmq._transport import Publisher, Subscriber, ipc_endpoint

pytestmark = pytest.mark.timeout(30)


def test_a_stalled_subscriber_holds_about_the_byte_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DORA_ZMQ_QUEUE_BYTES", str(1024 * 1024))  # the queues: 64 messages of 1 MiB
    pub = Publisher(ipc_endpoint(str(tmp_path), "pub"))
    sub = Subscriber()
    try:
        sub.connect(pub.ipc)
        sub.subscribe(b"t\0")
        while not pub.read_subscriptions():  # the subscription arrived: the connection exists
            pub.socket.poll(1000)
        payload = b"x" * (1024 * 1024)
        for _ in range(400):  # 400 MiB offered to a subscriber that reads nothing meanwhile
            pub.send([b"t\0", payload])
        got = 0
        while sub.socket.poll(500):
            while sub.recv_nowait() is not None:
                got += 1
        # 64 queued at each end plus what the kernel's socket buffers hold; 400 before the bound.
        assert 0 < got < 160, got
    finally:
        sub.close()
        pub.close(0)
