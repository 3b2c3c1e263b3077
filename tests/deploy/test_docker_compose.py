"""docker-compose.yml run for real: containers on a Docker engine, with Compose v2.

What test_compose_netns.py emulates with network namespaces, done by Docker itself: the image
built from deploy/Dockerfile, compose's DNS, depends_on and healthchecks, tini as PID 1, the
bind mounts, `stop` and `down`. The only change to the compose file is the test override
(compose.test.yml): Jaeger (which cannot be pulled here) becomes the project's OTLP receiver,
no host ports are published, and the image and the dataflows folder are the test's.

Each compose project costs a minute or more on the vfs driver (every container is a copy of
the image), so there are two: the demo to its end (with traces), and a never-ending dataflow
with CURVE keys that goes through `stop`, `start` and `down` (and the host's CLI through the
published port, with and without the keys).
Needs an engine: `sudo bash .ci/docker-engine.sh start` on a machine like CI's.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pytest

from dora_zmq.descriptor import load_dataflow
from dora_zmq.testing import run_cli

from ._compose import CURVE_OVERRIDE, MULTI_YML, REPO, dora_services, load_compose, traces_through
from ._docker import (
    DOCKER_TIMINGS,
    KEYS_OVERRIDE,
    PORT_OVERRIDE,
    TEST_OVERRIDE,
    ComposeProject,
    background,
    shared_dir,
    span_lines,
)

pytestmark = pytest.mark.docker

NODES = {"camera", "detector", "display"}
COUNT = int(load_dataflow(MULTI_YML).node("camera").env["COUNT"])


def _lifecycle_services() -> set[str]:
    machines = load_dataflow(MULTI_YML).machines()
    return {"dora-coordinator", *(f"dora-daemon-{m}" for m in machines)}


def _timed(name: str, started: float) -> None:
    DOCKER_TIMINGS[name] = time.monotonic() - started


@pytest.mark.timeout(600)
def test_up_runs_the_example_to_its_end_with_one_trace_per_frame(compose: Callable[..., ComposeProject]) -> None:
    project = compose(REPO / "dataflows", [TEST_OVERRIDE])
    started = time.monotonic()
    up = project.run("up", "--build", "--exit-code-from", "start", timeout=420, check=False)
    _timed("up --build --exit-code-from start", started)
    assert up.returncode == 0, f"{up.stdout[-6000:]}\n{up.stderr[-3000:]}"

    result = project.logs("start")
    for line in (
        f"camera: sent {COUNT} frames",
        f"detector: handled {COUNT} frames",
        f"display: {COUNT} boxes, {COUNT} correct, lost 0",
    ):
        assert line in result, result
    assert re.search(r"dataflow '.*' finished", result), result

    # Every span reached "jaeger" (the receiver stops last, after the services flushed).
    spans = span_lines(project.logs("jaeger"))
    services = {line.split(" ", 3)[1] for line in spans}
    assert NODES | _lifecycle_services() <= services, sorted(services)
    assert traces_through(spans, NODES) == COUNT, "\n".join(spans[-50:])


def _wait_for_frames(project: ComposeProject, since: str) -> None:
    """Follow the receiver's output until frames cross both machines (display spans)."""
    with background(
        project.argv("logs", "--follow", "--no-color", "--no-log-prefix", "--since", since, "jaeger"), project.env
    ) as follow:
        follow.wait_for_line(r"^span display ", timeout=120)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _assert_stopped_cleanly(start_log: str, exits: dict[str, int]) -> None:
    # The dataflow's own closing report: every node stopped on STOP, none was killed.
    sent = re.search(r"camera: sent (\d+) frames", start_log)
    assert sent and int(sent.group(1)) > 0, start_log
    shown = re.search(r"display: (\d+) boxes, (\d+) correct, lost 0", start_log)
    assert shown and shown.group(1) == shown.group(2) != "0", start_log
    assert re.search(r"dataflow '.*' (finished|stopped)", start_log), start_log
    # A node killed after its grace period is reported as failed, with the signal.
    assert not re.search(r"SIGKILL|killed|failed", start_log), start_log
    # Exit 0 everywhere: 137 would be Docker's SIGKILL after stop_grace_period.
    ours = set(dora_services(load_compose())) | {"jaeger"}
    assert set(exits) == ours, exits
    assert all(code == 0 for code in exits.values()), exits


def _curve_keys() -> Path:
    """`dora-zmq keys` for the compose demo, owned by the image's user (uid 1000), as deploy/README says."""
    keys = shared_dir("dora-zmq-keys-")
    made = run_cli(["keys", str(keys)], timeout=30)
    assert made.returncode == 0, made.output
    for root, dirs, files in os.walk(keys):
        for name in [*dirs, *files]:
            os.chown(Path(root) / name, 1000, 1000)
    os.chown(keys, 1000, 1000)
    return keys


@pytest.mark.timeout(900)
def test_a_never_ending_curve_dataflow_stops_cleanly_on_stop_and_on_down(
    compose: Callable[..., ComposeProject], forever_dataflows: Path
) -> None:
    """One project (containers are costly on vfs): up, stop, start again, down.

    On the way, the host's CLI reaches the coordinator through its published loopback port:
    answered with the keys, refused without them.
    """
    keys = _curve_keys()
    try:
        project = compose(
            forever_dataflows,
            [CURVE_OVERRIDE, TEST_OVERRIDE, KEYS_OVERRIDE, PORT_OVERRIDE],
            {"DORA_ZMQ_TEST_KEYS": str(keys)},
        )
        started = time.monotonic()
        since = _now()
        project.run("up", "--detach", timeout=300)
        _wait_for_frames(project, since)
        _timed("up -d until frames flow", started)

        host_port = project.run("port", "coordinator", "53290", timeout=30).stdout.strip()
        assert host_port.startswith("127.0.0.1:"), host_port
        address = f"tcp://{host_port}"
        allowed = run_cli(["list", "--coordinator", address], env={"DORA_ZMQ_KEYS": str(keys)}, timeout=40)
        assert allowed.returncode == 0 and "demo" in allowed.stdout, allowed.output
        refused = run_cli(["list", "--coordinator", address], timeout=40)
        assert refused.returncode == 1 and "no coordinator answered" in refused.stderr, refused.output

        # `docker compose stop`: the containers stay, with their exit codes and output.
        started = time.monotonic()
        project.run("stop", timeout=240)
        _timed("stop", started)
        containers = project.containers()
        assert not any(c["State"]["OOMKilled"] for c in containers.values())
        _assert_stopped_cleanly(project.logs("start"), {name: c["State"]["ExitCode"] for name, c in containers.items()})

        # The same containers again (`start` starts the dataflow anew), then `down`, which
        # removes them: one `docker wait` per container records its exit code before that.
        started = time.monotonic()
        since = _now()
        project.run("start", timeout=300)
        _wait_for_frames(project, since)
        _timed("start again until frames flow", started)
        waiters = {
            name: project.own(background(["docker", "wait", c["Id"]], project.env)) for name, c in containers.items()
        }
        logs = project.start("logs", "--follow", "--no-color", "--no-log-prefix", "--since", since, "start")
        started = time.monotonic()
        project.run("down", "--volumes", timeout=300)
        _timed("down", started)
        exits: dict[str, int] = {}
        for name, waiter in waiters.items():
            done = waiter.wait(30)
            assert done.returncode == 0, f"{name}: {done.output}"
            exits[name] = int(done.stdout.split()[-1])
        assert logs.wait(30).returncode == 0
        _assert_stopped_cleanly(logs.output, exits)
    finally:
        shutil.rmtree(keys, ignore_errors=True)
