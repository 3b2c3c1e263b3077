"""The detached workflow: ``up``, ``start``, ``list``, ``logs``, ``stop``, ``start --attach``,
``destroy``, against a coordinator on a free port with its state in ``tmp_path``."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from dora_zmq.testing import free_tcp_address, leaked_processes, write_dataflow

FLOWS = Path(__file__).resolve().parent / "flows"


def _list_until(dora, env: dict[str, str], pattern: str, timeout: float = 10.0) -> str:  # type: ignore[no-untyped-def]
    """Run ``dora-zmq list`` until its output matches (counters are reported once a second)."""
    deadline = time.monotonic() + timeout
    while True:
        result = dora("list", env=env).wait(15)
        assert result.returncode == 0, result.output
        if re.search(pattern, result.stdout, re.S) or time.monotonic() > deadline:
            return result.stdout


@pytest.mark.timeout(90)
def test_up_start_list_logs_stop_attach_destroy(dora, tmp_path: Path) -> None:
    env = {"DORA_ZMQ_COORDINATOR": free_tcp_address(), "DORA_ZMQ_STATE_DIR": str(tmp_path / "state")}
    # Runs until stopped: a ticker feeds a slow sink with queue_size 1, so it drops messages.
    forever = write_dataflow(
        tmp_path / "forever",
        """
        nodes:
          - id: ticker
            path: ticker.py
            inputs: {tick: dora/timer/millis/10}
            outputs: [count]
          - id: sink
            path: recorder.py
            env: {SLEEP_S: 0.1}
            inputs:
              count: {source: ticker/count, queue_size: 1}
        """,
        copy=[FLOWS / "ticker.py", FLOWS / "recorder.py"],
    )
    finite = write_dataflow(
        tmp_path / "finite",
        """
        nodes:
          - id: source
            path: burst.py
            outputs: [numbers]
            env: {COUNT: 5}
          - id: sink
            path: recorder.py
            inputs: {numbers: source/numbers}
        """,
        copy=[FLOWS / "burst.py", FLOWS / "recorder.py"],
    )

    up = dora("up", env=env)
    result = up.wait(30)
    assert result.returncode == 0, result.output
    assert "up" in result.stdout and env["DORA_ZMQ_COORDINATOR"] in result.stdout
    assert (tmp_path / "state" / "coordinator.log").exists()
    # `up` again finds the running coordinator instead of starting a second one.
    again = dora("up", env=env).wait(15)
    assert again.returncode == 0 and "already running" in again.stdout, again.output

    started = dora("start", str(forever), "--name", "demo", env=env).wait(15)
    assert started.returncode == 0, started.output
    assert "started dataflow 'demo'" in started.stdout

    # `list` shows it running, and the sink's drops once they are reported.
    listing = _list_until(dora, env, r"demo.*running.*sink/count: \d+")
    assert re.search(r"demo\s.*running", listing), listing
    assert re.search(r"sink/count: \d+", listing), listing

    logs = dora("logs", "demo", "sink", env=env)
    logs.wait_for_line(r"^sink EVENT ")
    assert logs.wait(15).returncode == 0

    follow = dora("logs", "demo", "sink", "--follow", env=env)
    follow.wait_for_line(r"^sink EVENT ")
    stopped = dora("stop", "demo", "--grace-duration", "5", env=env).wait(15)
    assert stopped.returncode == 0 and "stopping dataflow 'demo'" in stopped.stdout, stopped.output
    followed = follow.wait(20)  # --follow ends with the dataflow
    assert followed.returncode == 0, followed.output
    assert '"type": "STOP", "id": "MANUAL"' in followed.stdout
    assert "sink END after" in followed.stdout
    listing = _list_until(dora, env, r"demo.*finished")
    assert re.search(r"demo\s.*finished", listing), listing

    attached = dora("start", str(finite), "--name", "once", "--attach", env=env).wait(30)
    assert attached.returncode == 0, attached.output
    assert "sink END after 5 inputs" in attached.stdout
    assert "dataflow 'once' finished" in attached.stderr

    # Unknown names are an error with a hint, not a traceback.
    unknown = dora("stop", "nosuch", env=env).wait(15)
    assert unknown.returncode == 1 and "no dataflow 'nosuch'" in unknown.output and "Traceback" not in unknown.output

    destroyed = dora("destroy", env=env).wait(40)
    assert destroyed.returncode == 0, destroyed.output
    assert "destroyed" in destroyed.stdout
    # The coordinator and the daemon `up` started (and their nodes) are gone.
    deadline = time.monotonic() + 5
    while (left := leaked_processes(up.tag)) and time.monotonic() < deadline:
        time.sleep(0.05)  # no event to wait on for another session's processes to exit
    assert not left, [" ".join(p.cmdline()) for p in left]
    after = dora("list", env=env).wait(15)
    assert after.returncode == 1 and "no coordinator answered" in after.output, after.output


def test_cli_without_a_coordinator_says_how_to_start_one(dora, tmp_path: Path) -> None:
    env = {"DORA_ZMQ_COORDINATOR": free_tcp_address()}
    result = dora("list", env=env).wait(30)
    assert result.returncode == 1, result.output
    assert "no coordinator answered" in result.output and "dora-zmq up" in result.output
    assert "Traceback" not in result.output
