"""Why no coordinator can answer at an address, said at once."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

from dora_zmq.cli import _client
from dora_zmq.cli._client import unreachable


def test_a_hanging_name_server_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def slow_getaddrinfo(*args: Any, **kwargs: Any) -> Any:
        release.wait(10)  # a name server that does not answer
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(_client.socket, "getaddrinfo", slow_getaddrinfo)
    started = time.monotonic()
    try:
        why = unreachable("tcp://coordinator.example:53290", 0.3)
    finally:
        release.set()
    assert time.monotonic() - started < 2
    assert "resolving 'coordinator.example' took more than 0.3 s" in why


def test_refused_unresolvable_and_malformed() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        assert "connection refused" in unreachable(f"tcp://127.0.0.1:{port}") and "dora-zmq up" in unreachable(
            f"tcp://127.0.0.1:{port}"
        )
    assert "does not resolve" in unreachable("tcp://nosuchhost.invalid:1")
    assert "expected tcp://HOST:PORT" in unreachable("tcp://localhost:http-ish")
    assert unreachable("ipc:///tmp/x.sock") == ""  # not probed: ZeroMQ says


def test_a_listening_port_is_reachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert unreachable(f"tcp://127.0.0.1:{s.getsockname()[1]}") == ""
