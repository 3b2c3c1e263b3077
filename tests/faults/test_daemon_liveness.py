"""When the coordinator declares a daemon lost (coordinator/_liveness.py), with a stand-in
daemon: silence alone is not enough while its connection is open; a closed connection is.

The timeouts are shortened in-process (0.3 s silence, 2 s hung) to keep this fast.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from typing import Iterator

import pytest

from dora_zmq import _control as ctl
from dora_zmq._transport import Channel
from dora_zmq._version import __version__
from dora_zmq.coordinator import Coordinator, _liveness

pytestmark = pytest.mark.timeout(30)

_SILENT_S = 0.3
_HUNG_S = 2.0


@pytest.fixture
def coordinator(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[Coordinator]:
    monkeypatch.setattr(_liveness, "DAEMON_TIMEOUT_S", _SILENT_S)
    monkeypatch.setattr(_liveness, "DAEMON_HUNG_S", _HUNG_S)
    coord = Coordinator("tcp://127.0.0.1:0", cache_dir=tmp_path)
    thread = threading.Thread(target=coord.serve_forever, name="test-coordinator", daemon=True)
    thread.start()
    try:
        yield coord
    finally:
        coord.request_shutdown()
        thread.join(5)
        assert not thread.is_alive()


def _register(address: str) -> tuple[Channel, str]:
    identity = f"daemon/edge/{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(16)}"
    ch = Channel.connect(address, identity=identity)
    hello = ctl.RegisterDaemon("edge", __version__, ctl.PROTOCOL_VERSION, socket.gethostname(), os.getpid(), [])
    reply = ch.request(hello, 10.0)
    assert isinstance(reply, ctl.DaemonAccepted) and not reply.error, reply
    return ch, identity


def _daemons(address: str) -> list[str]:
    cli = Channel.connect(address)
    try:
        return [d.machine_id for d in cli.request(ctl.GetStatus(), 10.0).daemons]
    finally:
        cli.close()


def _wait_gone(address: str, within_s: float) -> float:
    """Seconds until the coordinator no longer lists machine 'edge' (fails after ``within_s``)."""
    start = time.monotonic()
    while "edge" in _daemons(address):
        assert time.monotonic() - start < within_s, "the daemon was never declared lost"
        time.sleep(0.05)  # polling the coordinator's state, not synchronising
    return time.monotonic() - start


def test_a_silent_daemon_with_an_open_connection_is_a_suspect_until_the_hung_limit(
    coordinator: Coordinator, caplog
) -> None:
    caplog.set_level(logging.INFO, "dora_zmq.coordinator")
    ch, _ = _register(coordinator.address)
    try:
        gone_after = _wait_gone(coordinator.address, _HUNG_S + 5)
    finally:
        ch.close()
    assert gone_after >= _HUNG_S - 0.1, f"lost after {gone_after:.2f} s of silence: before the hung limit"
    assert "busy, not lost" in caplog.text
    assert "although its connection is open (hung)" in caplog.text


def test_a_silent_daemon_whose_connection_closed_is_lost(coordinator: Coordinator, caplog) -> None:
    caplog.set_level(logging.INFO, "dora_zmq.coordinator")
    ch, _ = _register(coordinator.address)
    ch.close()  # the process died: its TCP connection is gone
    gone_after = _wait_gone(coordinator.address, _HUNG_S)
    assert gone_after < _HUNG_S, gone_after
    assert "its connection is closed" in caplog.text


def test_beats_on_the_heartbeat_connection_keep_the_daemon(coordinator: Coordinator, caplog) -> None:
    caplog.set_level(logging.INFO, "dora_zmq.coordinator")
    ch, identity = _register(coordinator.address)
    beats = Channel.connect(coordinator.address, identity=identity + ctl.HEARTBEAT_ID_SUFFIX.decode())
    stranger = Channel.connect(
        coordinator.address, identity=f"daemon/x/{secrets.token_hex(8)}" + ctl.HEARTBEAT_ID_SUFFIX.decode()
    )
    try:
        deadline = time.monotonic() + _HUNG_S + 1.0  # past the hung limit: only these beats hold it
        while time.monotonic() < deadline:
            beats.send(ctl.DaemonHeartbeat("edge"))
            stranger.send(ctl.DaemonHeartbeat("nobody"))  # names no registered daemon: dropped
            stranger.send(ctl.NodeReady("df", "n", ctl.NodeEndpoint("", "ipc:///x")))  # beats only
            assert "edge" in _daemons(coordinator.address)
            time.sleep(ctl.HEARTBEAT_INTERVAL_S / 2)  # the beat's own pace
        assert "daemon 'edge' lost" not in caplog.text, caplog.text
        assert "a heartbeat connection carries heartbeats only" in caplog.text
        assert _daemons(coordinator.address) == ["edge"]
    finally:
        beats.close()
        stranger.close()
        ch.close()
