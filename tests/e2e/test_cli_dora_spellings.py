"""What a dora user types works here: ``down``, durations such as ``--grace-duration 5s``,
``new --lang python``, ``DORA_COORDINATOR_ADDR``/``_PORT`` and ``--coordinator-addr``/``-port``,
``build`` and ``start --build``;
and ``list`` shows a node's restarts."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from dora_zmq.testing import free_tcp_address, leaked_processes, write_dataflow

FLAKY = """
import os
import pyarrow as pa
from dora_zmq import Node

counter = "attempts.txt"
attempt = int(open(counter).read()) if os.path.exists(counter) else 0
open(counter, "w").write(str(attempt + 1))
node = Node()
print("attempt", attempt, "restart_count", node.restart_count(), flush=True)
for event in node:
    if event["type"] == "INPUT" and attempt < 2:
        raise SystemExit(3)
"""


@pytest.mark.timeout(90)
def test_dora_spellings_and_restarts_in_list(dora, tmp_path: Path) -> None:
    host, port = free_tcp_address().removeprefix("tcp://").rsplit(":", 1)
    env = {"DORA_COORDINATOR_ADDR": host, "DORA_COORDINATOR_PORT": port, "DORA_ZMQ_STATE_DIR": str(tmp_path / "state")}
    flow = write_dataflow(
        tmp_path / "flow",
        """
        nodes:
          - id: flaky
            path: flaky.py
            build: python -c "open('built.txt', 'w').write('yes')"
            restart_policy: on-failure
            inputs: {tick: dora/timer/millis/50}
        """,
        files={"flaky.py": FLAKY},
    )
    up_process = dora("up", env=env)
    up = up_process.wait(30)
    assert up.returncode == 0, up.output
    assert f"tcp://{host}:{port}" in up.stdout, up.output  # the dora variables picked the address

    started = dora("start", str(flow), "--name", "flaky", "--build", env=env).wait(30)
    assert started.returncode == 0, started.output
    assert (tmp_path / "flow" / "built.txt").read_text() == "yes"

    deadline = time.monotonic() + 20
    while True:  # restarts are reported as they happen; wait for the second
        listing = dora("list", env=env).wait(15)
        assert listing.returncode == 0, listing.output
        if re.search(r"flaky: 2", listing.stdout) or time.monotonic() > deadline:
            break
    assert re.search(r"flaky\s.*running.*flaky: 2", listing.stdout, re.S), listing.stdout

    # dora's flags name the coordinator too (over the environment)
    flags = dora(
        "list",
        "--coordinator-addr",
        host,
        "--coordinator-port",
        port,
        env={"DORA_ZMQ_STATE_DIR": env["DORA_ZMQ_STATE_DIR"]},
    ).wait(15)
    assert flags.returncode == 0 and "flaky" in flags.stdout, flags.output
    stop = dora("stop", "flaky", "--grace-duration", "5s", env=env).wait(15)
    assert stop.returncode == 0, stop.output
    down = dora("down", env=env).wait(40)
    assert down.returncode == 0 and "destroyed" in down.stdout, down.output
    deadline = time.monotonic() + 10  # the coordinator and daemon `up` started are gone
    while (left := leaked_processes(up_process.tag)) and time.monotonic() < deadline:
        time.sleep(0.05)  # no event to wait on for another session's processes to exit
    assert not left, [" ".join(p.cmdline()) for p in left]


def test_duration_and_lang_spellings(dora, tmp_path: Path) -> None:
    bad = dora("stop", "x", "--grace-duration", "5 parsecs").wait(15)
    assert bad.returncode == 2 and "is not a duration" in bad.output, bad.output
    made = dora("new", "demo", "--lang", "python", cwd=tmp_path).wait(15)
    assert made.returncode == 0 and (tmp_path / "demo" / "dataflow.yml").exists(), made.output
    rust = dora("new", "other", "--lang", "rust", cwd=tmp_path).wait(15)
    assert rust.returncode == 1 and "--lang rust" in rust.output and not (tmp_path / "other").exists(), rust.output
