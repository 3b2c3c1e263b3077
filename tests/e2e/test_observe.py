"""Seeing a running deployment: ``status``, ``top``, ``--format json`` on ``list``/``status``/
``logs``, the ``logs`` filters and ``run --stop-after``, with real coordinator, daemon and nodes."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from dora_zmq import __version__
from dora_zmq.testing import TAG_ENV, free_tcp_address, kill_tagged, write_dataflow

FLOWS = Path(__file__).resolve().parent / "flows"

# A ticker at 100 Hz feeding a sink that takes 20 per second and keeps 2 (it drops the rest).
# (test_observe places the sink on machine "arm", another daemon on this host.)
FOREVER = """
nodes:
  - id: ticker
    path: ticker.py
    inputs: {tick: dora/timer/millis/10}
    outputs: [count]
  - id: sink
    path: recorder.py
    env: {SLEEP_S: 0.05}
    inputs:
      count: {source: ticker/count, queue_size: 2}
"""

DATAFLOW_KEYS = {
    "id",
    "name",
    "status",
    "started_at",
    "ended_at",
    "nodes",
    "machines",
    "failures",
    "error",
    "dropped",
    "lost",
    "undelivered",
    "restarts",
}
DAEMON_KEYS = {
    "machine_id",
    "hostname",
    "pid",
    "version",
    "advertise",
    "node_addresses",
    "heartbeat_age_s",
    "connected_s",
    "nodes_running",
}


def _json(result: Any) -> Any:
    assert result.returncode == 0, result.output
    return json.loads(result.stdout)


def _until(fetch: Any, check: Any, timeout: float = 15.0) -> Any:
    """Call ``fetch()`` until ``check(value)`` holds (state reported once a second)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if check(value) or time.monotonic() > deadline:
            return value


@pytest.fixture
def deployment(dora, local_cluster, tmp_path: Path) -> dict[str, str]:
    """A coordinator and two daemons (the default machine, and 'arm'), running FOREVER as 'demo'
    with the ticker on the default machine and the sink on 'arm' (over tcp, as across hosts)."""
    cluster = local_cluster()
    env = cluster.env
    cluster.coordinator()
    cluster.daemon("--bind-data", "127.0.0.1")
    cluster.daemon("--machine-id", "arm", "--bind-data", "127.0.0.1", "--advertise", "127.0.0.1")
    yaml = FOREVER.replace("    path: recorder.py\n", "    path: recorder.py\n    deploy: {machine: arm}\n")
    flow = write_dataflow(tmp_path / "forever", yaml, copy=[FLOWS / "ticker.py", FLOWS / "recorder.py"])
    _until(
        lambda: dora("status", "--json", env=env).wait(15),
        lambda r: len(json.loads(r.stdout or "{}").get("daemons", [])) == 2,
    )
    started = dora("start", str(flow), "--name", "demo", env=env).wait(30)
    assert started.returncode == 0, started.output
    assert "2 nodes on machines (default), arm" in started.stdout
    return env


@pytest.mark.timeout(90)
def test_status_list_and_logs_as_tables_and_json(dora, deployment: dict[str, str]) -> None:
    env = deployment
    address = env["DORA_ZMQ_COORDINATOR"]
    status = _until(
        lambda: _json(dora("status", "--format", "json", env=env).wait(15)),
        lambda s: [d["nodes_running"] for d in s["daemons"]] == [1, 1],
    )
    assert set(status) == {"coordinator", "daemons", "dataflows"}
    assert status["coordinator"]["address"] == address and status["coordinator"]["version"] == __version__
    assert status["coordinator"]["uptime_s"] > 0
    assert [set(d) for d in status["daemons"]] == [DAEMON_KEYS, DAEMON_KEYS]
    default, arm = status["daemons"]
    assert (default["machine_id"], arm["machine_id"]) == ("", "arm")
    assert (default["nodes_running"], arm["nodes_running"]) == (1, 1), status["daemons"]
    assert (default["advertise"], arm["advertise"], arm["version"]) == ("", "127.0.0.1", __version__)
    assert any(a.startswith("tcp://127.0.0.1:") for a in arm["node_addresses"]), arm
    assert all(0 <= d["heartbeat_age_s"] < 3 for d in status["daemons"])
    (demo,) = status["dataflows"]
    assert set(demo) == DATAFLOW_KEYS and demo["status"] == "running"
    assert demo["machines"] == {"ticker": "", "sink": "arm"}

    table = dora("status", env=env).wait(15)
    assert table.returncode == 0, table.output
    assert f"coordinator {address}  version {__version__}" in table.stdout
    assert re.search(r"\(default\) .*\b1\b", table.stdout) and re.search(r"arm .*127\.0\.0\.1.*\b1\b", table.stdout), (
        table.stdout
    )
    assert re.search(r"demo\s.*running", table.stdout), table.stdout

    # The daemons' healthcheck.
    assert dora("status", "--machine", "arm", env=env).wait(15).returncode == 0
    assert dora("status", "--machine", "", env=env).wait(15).returncode == 0
    missing = dora("status", "--machine", "gripper", env=env).wait(15)
    assert missing.returncode == 1 and "no daemon for machine 'gripper' is connected" in missing.stderr, missing.output

    listing = _until(
        lambda: _json(dora("list", "--json", env=env).wait(15)),
        lambda li: li["dataflows"][0]["dropped"].get("sink/count", 0) > 0,
    )
    assert set(listing["dataflows"][0]) == DATAFLOW_KEYS and listing["dataflows"][0]["dropped"]["sink/count"] > 0

    # logs: every node, filtered, as JSON lines.
    ready = _until(
        lambda: dora("logs", "demo", "--all-nodes", "--grep", "^READY$", "--json", env=env).wait(15),
        lambda r: len(r.stdout.splitlines()) == 2,
    )
    lines = [json.loads(line) for line in ready.stdout.splitlines()]
    assert {line["node"] for line in lines} == {"ticker", "sink"}, ready.stdout
    for line in lines:
        assert set(line) == {"time", "dataflow_id", "node", "stream", "line"}
        assert line["line"] == "READY" and line["stream"] == "stdout" and line["dataflow_id"] == demo["id"]
        assert abs(time.time() - line["time"]) < 60
    recent = dora("logs", "demo", "sink", "--since", "1h", "--tail", "2", "--json", env=env).wait(15)
    assert len(recent.stdout.splitlines()) == 2, recent.output
    last_match = dora("logs", "demo", "--all-nodes", "--grep", "^READY$", "--tail", "1", env=env).wait(15)
    assert last_match.stdout.splitlines() == [f"{lines[-1]['node']} READY"], last_match.output  # --tail counts matches
    bad_re = dora("logs", "demo", "sink", "--grep", "(", env=env).wait(15)
    assert bad_re.returncode == 2 and "--grep" in bad_re.stderr, bad_re.output
    future = dora("logs", "demo", "sink", "--since", "2099-01-01T00:00:00", env=env).wait(15)
    assert future.returncode == 0 and future.stdout == "", future.output
    bad = dora("logs", "demo", "sink", "--since", "soon", env=env).wait(15)
    assert bad.returncode == 2 and "--since" in bad.stderr, bad.output
    no_node = dora("logs", "demo", env=env).wait(15)
    assert no_node.returncode == 2 and "--all-nodes" in no_node.stderr, no_node.output

    # --follow with a filter ends with the dataflow.
    follow = dora("logs", "demo", "--all-nodes", "--follow", "--grep", "STOP", env=env)
    stopped = dora("stop", "demo", env=env).wait(15)
    assert stopped.returncode == 0, stopped.output
    followed = follow.wait(30)
    assert followed.returncode == 0, followed.output
    assert "ticker STOP MANUAL" in followed.stdout, followed.stdout
    assert all("STOP" in line for line in followed.stdout.splitlines()), followed.stdout


@pytest.mark.timeout(60)
def test_top_once_shows_rates_resources_and_drops(dora, deployment: dict[str, str]) -> None:
    env = deployment
    pattern = r"ticker\s+-\s+[\d.]+\s+[\d.]+ MiB\s+0\s+← tick\s+(\d+)"
    view = _until(
        lambda: dora("top", "--once", env=env).wait(20),
        lambda r: bool(re.search(pattern, r.stdout)) and "sink" in r.stdout,
    )
    assert view.returncode == 0, view.output
    text = view.stdout
    m = re.search(pattern, text)
    assert m, text
    assert 20 <= int(m.group(1)) <= 130, (
        text
    )  # a 10 ms timer: about 100 per second (fewer on a loaded machine), not 0 or 2x
    assert re.search(r"→ count\s+\d+", text), text
    sink = re.search(
        r"sink\s+arm\s+[\d.]+\s+[\d.]+ MiB\s+0\s+← count\s+[\d.]+\s+(\d+)\s+(\d+)\s+0", text
    )  # sampled by arm's daemon
    assert sink and int(sink.group(1)) <= 2 and int(sink.group(2)) > 0, text  # queue within queue_size; drops


@pytest.mark.timeout(60)
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux to drive a terminal")
def test_top_in_a_terminal_refreshes_and_quits_on_q_or_ctrl_c(dora, deployment: dict[str, str], tmp_path: Path) -> None:
    env = deployment
    server = f"dora-zmq-test-{uuid.uuid4().hex[:8]}"  # our own tmux server: nothing shared
    tag = uuid.uuid4().hex
    top = (
        f"env -u COLUMNS -u LINES {TAG_ENV}={tag} DORA_ZMQ_COORDINATOR={env['DORA_ZMQ_COORDINATOR']}"
        f" {sys.executable} -m dora_zmq top"
    )
    command = f"{top}; echo TOP-EXITED rc=$?; {top}; echo AGAIN-EXITED rc=$?; sleep 60"
    tmux = ["tmux", "-L", server]
    subprocess.run([*tmux, "new-session", "-d", "-s", "top", "-x", "120", "-y", "25", command], check=True, timeout=10)  # noqa: S603

    def screen() -> str:
        return subprocess.run(
            [*tmux, "capture-pane", "-p", "-t", "top"], capture_output=True, text=True, timeout=10, check=False
        ).stdout  # noqa: S603

    try:
        rate = r"← tick\s+(\d+)\s"
        first = _until(screen, lambda s: bool(re.search(rate, s)))
        assert "dora-zmq top" in first and "q quits" in first and "dataflow demo, 2 nodes" in first, first
        stamp = re.search(r"\d\d:\d\d:\d\d", first)
        assert stamp, first
        later = _until(screen, lambda s: stamp.group(0) not in s)  # refreshed on its own
        assert stamp.group(0) not in later and re.search(rate, later), later
        assert 20 <= int(re.search(rate, later).group(1)) <= 130, later  # type: ignore[union-attr]
        subprocess.run([*tmux, "send-keys", "-t", "top", "q"], check=True, timeout=10)  # noqa: S603
        done = _until(screen, lambda s: "TOP-EXITED" in s, timeout=10)
        assert "TOP-EXITED rc=0" in done and "Traceback" not in done, done
        # The second one (in the alternate screen, hiding the first's exit line) quits on Ctrl-C.
        again = _until(screen, lambda s: "TOP-EXITED" not in s and bool(re.search(rate, s)))
        assert re.search(rate, again), again
        subprocess.run([*tmux, "send-keys", "-t", "top", "C-c"], check=True, timeout=10)  # noqa: S603
        done = _until(screen, lambda s: "AGAIN-EXITED" in s, timeout=10)
        assert "AGAIN-EXITED rc=0" in done and "Traceback" not in done, done
    finally:
        subprocess.run([*tmux, "kill-server"], timeout=10, check=False)  # noqa: S603
        leaked = kill_tagged(tag)
    assert not leaked, leaked


@pytest.mark.timeout(30)
def test_status_is_a_fast_healthcheck(dora) -> None:
    refused = dora("status", "--coordinator", "tcp://127.0.0.1:1", "--json").wait(15)
    assert refused.returncode == 1 and refused.seconds < 5, refused.output  # Python start-up included
    answer = json.loads(refused.stdout)
    assert answer["coordinator"] is None and "connection refused" in answer["error"]
    # Something accepts the connection but never answers (a stuck or foreign service).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        stuck = dora("status", "--coordinator", f"tcp://127.0.0.1:{port}", "--timeout", "1s").wait(15)
    assert stuck.returncode == 1 and stuck.seconds < 6, stuck.output
    assert "no coordinator answered" in stuck.stderr and "within 1 s" in stuck.stderr, stuck.output


@pytest.mark.timeout(60)
def test_run_stop_after_stops_cleanly(dora, tmp_path: Path) -> None:
    flow = write_dataflow(tmp_path, FOREVER, copy=[FLOWS / "ticker.py", FLOWS / "recorder.py"])
    result = dora("run", str(flow), "--stop-after", "1500ms", env={"DORA_ZMQ_COORDINATOR": free_tcp_address()}).wait(40)
    assert result.returncode == 0, result.output
    assert "stopping dataflow after 1.5 s (--stop-after)" in result.stderr, result.output
    assert "ticker STOP MANUAL" in result.stdout and "finished (stopped)" in result.stderr, result.output
    assert result.seconds < 20
    bad = dora("run", str(flow), "--stop-after", "later").wait(20)
    assert bad.returncode == 2 and "'later' is not a duration" in bad.stderr, bad.output
