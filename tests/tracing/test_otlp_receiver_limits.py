"""The bundled OTLP receiver: loopback by default, bounded bodies (gzip included), bad requests
answered rather than crashing a handler.

Before: ``python -m dora_zmq.otlp_receiver PORT`` listened on every interface, read whatever
Content-Length claimed and decompressed gzip without a limit (a 20 KB request became 20 MB,
or gigabytes), and a body that was not an export killed the handler without a reply.
"""

from __future__ import annotations

import gzip
import http.client
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from dora_zmq.otlp_receiver import MAX_BODY_BYTES, OtlpReceiver

pytestmark = pytest.mark.timeout(60)


def _post(receiver: OtlpReceiver, body: bytes, headers: dict[str, str]) -> int:
    host, port = receiver.endpoint.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=15)
    try:
        conn.request("POST", "/v1/traces", body=body, headers={"Content-Type": "application/x-protobuf", **headers})
        return conn.getresponse().status
    finally:
        conn.close()


def test_the_command_listens_on_loopback_by_default(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dora_zmq.otlp_receiver", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=tmp_path,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
        listening = [
            c.laddr.ip for c in psutil.Process(proc.pid).net_connections("tcp") if c.status == psutil.CONN_LISTEN
        ]
        assert listening == ["127.0.0.1"], listening
    finally:
        proc.kill()
        proc.wait(5)


def test_a_body_larger_than_the_cap_is_refused_unread() -> None:
    with OtlpReceiver() as receiver:
        # Content-Length claims more than the cap; only 10 bytes follow. Reading it would block.
        host, port = receiver.endpoint.removeprefix("http://").rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=15)
        try:
            conn.putrequest("POST", "/v1/traces")
            conn.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
            conn.endheaders(b"0123456789")
            assert conn.getresponse().status == 413
        finally:
            conn.close()
        assert receiver.requests == 0


def test_a_gzip_bomb_is_refused() -> None:
    bomb = gzip.compress(bytes(MAX_BODY_BYTES + 1024 * 1024), compresslevel=9)
    assert len(bomb) < 64 * 1024
    with OtlpReceiver() as receiver:
        assert _post(receiver, bomb, {"Content-Encoding": "gzip"}) == 413
        assert _post(receiver, b"", {}) == 200  # still serving
        assert receiver.requests == 1


@pytest.mark.parametrize("body, headers", [(b"\xff" * 100, {}), (b"not gzip", {"Content-Encoding": "gzip"})])
def test_a_body_that_is_no_export_gets_400(body: bytes, headers: dict[str, str]) -> None:
    with OtlpReceiver() as receiver:
        assert _post(receiver, body, headers) == 400
        assert _post(receiver, b"", {}) == 200
