"""A real daemon process against a scripted coordinator: the shipping protocol step by step.

The test plays the coordinator on a control socket of its own, so it decides when chunks
arrive: a dataflow stopped while its folder is on the way ends without starting anything,
and a later dataflow with the same folder starts from the daemon's cache without a fetch.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from dora_zmq import _control as ctl
from dora_zmq._bundle import CHUNK_BYTES, encode_chunk, pack_folder
from dora_zmq._transport import Channel
from dora_zmq.testing import free_tcp_address, write_dataflow

YAML = "nodes:\n  - id: hello\n    path: hello.sh\n"
HELLO = '#!/bin/sh\necho "hello from $(pwd)"\n'


class _Coordinator:
    def __init__(self, address: str) -> None:
        self.channel = Channel.serve(address)
        self.daemon = b""

    def expect(self, kind: type, timeout: float = 15.0) -> Any:
        """The next message of ``kind`` from the daemon (heartbeats and others skipped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.channel.recv(200)
            if got is None:
                continue
            peer, msg = got
            if isinstance(msg, ctl.RegisterDaemon):
                self.daemon = peer
                self.channel.send(ctl.DaemonAccepted(), to=peer)
            if isinstance(msg, kind):
                return msg
        raise AssertionError(f"no {kind.__name__} from the daemon within {timeout} s")

    def send(self, msg: Any) -> None:
        assert self.channel.send(msg, to=self.daemon)


@pytest.mark.timeout(60)
def test_stopped_while_fetching_then_started_from_the_cache(dora, tmp_path: Path) -> None:
    folder = tmp_path / "flow"
    write_dataflow(folder, YAML, files={"hello.sh": HELLO})
    (folder / "pad.bin").write_bytes(os.urandom(CHUNK_BYTES + 1))  # two chunks
    bundle = pack_folder(folder)
    ref = ctl.BundleRef(bundle.digest, bundle.size)
    address = free_tcp_address()
    coordinator = _Coordinator(address)
    try:
        dora("daemon", "--coordinator", address, "--cache-dir", str(tmp_path / "cache"))
        coordinator.expect(ctl.RegisterDaemon)
        gone = str(tmp_path / "not-on-this-machine")
        coordinator.send(ctl.SpawnNodes("df1", "first", YAML, gone, ["hello"], ship=ctl.ShipMode.ALWAYS, bundle=ref))
        fetch = coordinator.expect(ctl.FetchBundle)
        assert fetch == ctl.FetchBundle(bundle.digest, 0)
        coordinator.send(ctl.StopNodes("df1", 1.0))  # stopped with its folder half-way
        while True:
            coordinator.send(
                ctl.BundleChunk(
                    bundle.digest, fetch.offset, encode_chunk(bundle.data[fetch.offset : fetch.offset + CHUNK_BYTES])
                )
            )
            if fetch.offset + CHUNK_BYTES >= bundle.size:
                break
            fetch = coordinator.expect(ctl.FetchBundle)
        exited = coordinator.expect(ctl.NodeExited)
        assert (exited.dataflow_id, exited.node, exited.failed, exited.reason) == (
            "df1",
            "hello",
            False,
            "stopped before it started",
        )

        coordinator.send(ctl.SpawnNodes("df2", "second", YAML, gone, ["hello"], ship=ctl.ShipMode.ALWAYS, bundle=ref))
        logs = coordinator.expect(ctl.NodeLogs)
        assert (
            logs.dataflow_id == "df2" and logs.lines[0].startswith("hello from /") and logs.lines[0].endswith("/work")
        ), logs
        exited = coordinator.expect(ctl.NodeExited)
        assert (exited.dataflow_id, exited.failed) == ("df2", False), exited
        # Nothing was fetched for the second dataflow: the daemon's cache had the bundle.
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            got = coordinator.channel.recv(100)
            assert got is None or not isinstance(got[1], ctl.FetchBundle), got
        coordinator.send(ctl.ShutdownDaemon(1.0))
        coordinator.expect(ctl.DaemonExiting)
    finally:
        coordinator.channel.close()
