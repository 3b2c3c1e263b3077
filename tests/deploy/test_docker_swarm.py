"""deploy/swarm-stack.yml on a real single-node Docker Swarm.

The test makes the swarm (loopback only), labels the node as dora machine `cam`, deploys the
stack, sees `daemon-compute` held back because no node is labelled `compute`, moves machine
`compute` onto that node (its constraint), and waits for the one-shot `start` to complete the
dataflow. Then the
stack is removed and the swarm left. Jaeger, which cannot be pulled here, is replaced by the
project's OTLP receiver in a copy of the stack file; everything else is the file as shipped,
CURVE keys (Docker secrets) included.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest
import yaml

from dora_zmq.descriptor import load_dataflow
from dora_zmq.testing import run_cli

from ._compose import MULTI_YML, REPO, traces_through
from ._docker import DOCKER_TIMINGS, docker, shared_dir, span_lines

pytestmark = pytest.mark.docker

STACK_FILE = REPO / "deploy" / "swarm-stack.yml"
NODES = {"camera", "detector", "display"}


@pytest.fixture
def swarm(docker_image: str) -> Iterator[str]:
    """A single-node swarm on loopback, left (and its gateway bridge removed) at the end."""
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}", timeout=30).stdout.strip()
    if state != "inactive":
        pytest.skip(f"this engine is already in a swarm ({state}): the test would change it")
    docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377", timeout=60)
    try:
        yield docker("info", "--format", "{{.Swarm.NodeID}}", timeout=30).stdout.strip()
    finally:
        docker("swarm", "leave", "--force", timeout=120, check=False)
        # `swarm leave` keeps the gateway bridge it made.
        docker("network", "rm", "docker_gwbridge", timeout=60, check=False)


def _wait_for(what: str, check: Callable[[], str | None], timeout: float) -> str:
    """Poll the engine's view (no event to wait on from here) until ``check`` returns a value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found is not None:
            return found
        time.sleep(1)
    raise AssertionError(f"{what}: not within {timeout} s")


def _tasks(service: str) -> list[str]:
    """``state|error`` of each task of a service, newest first."""
    out = docker(
        "service", "ps", "--no-trunc", "--format", "{{.CurrentState}}|{{.Error}}", service, timeout=30, check=False
    ).stdout
    return [line for line in out.splitlines() if line.strip()]


def _test_stack(image: str, folder: Path) -> Path:
    """The shipped stack with `jaeger` replaced by the OTLP receiver (no image to pull, no port)."""
    stack = yaml.safe_load(STACK_FILE.read_text())
    stack["services"]["jaeger"] = {
        "image": image,
        "init": True,
        "command": ["python", "-m", "dora_zmq.otlp_receiver", "4318", "0.0.0.0"],  # other containers export to it
        "networks": ["dora"],
        "deploy": {"endpoint_mode": "dnsrr", "restart_policy": {"condition": "none"}},
    }
    path = folder / "swarm-stack.yml"
    path.write_text(yaml.safe_dump(stack, sort_keys=False))
    return path


@pytest.mark.timeout(600)
def test_stack_runs_the_example_on_a_single_node_swarm(docker_image: str, swarm: str) -> None:
    folder = shared_dir("dora-zmq-swarm-")
    name = f"dzt{uuid.uuid4().hex[:6]}"
    count = int(load_dataflow(MULTI_YML).node("camera").env["COUNT"])
    try:
        keys = folder / "keys"
        assert run_cli(["keys", str(keys)], timeout=30).returncode == 0
        stack = _test_stack(docker_image, folder)
        env = {
            "DORA_ZMQ_IMAGE": docker_image,
            "DORA_ZMQ_DATAFLOWS": str(REPO / "dataflows"),
            "DORA_ZMQ_KEYS_DIR": str(keys),
        }
        docker("node", "update", "--label-add", "dora-machine=cam", swarm, timeout=30)
        started = time.monotonic()
        docker("stack", "deploy", "--compose-file", str(stack), name, timeout=120, env={**os.environ, **env})

        # Placement by label: `cam` runs, `compute` waits for a node labelled compute.
        _wait_for(
            "daemon-cam running",
            lambda: "ok" if any(t.startswith("Running") for t in _tasks(f"{name}_daemon-cam")) else None,
            180,
        )
        held = _wait_for(
            "daemon-compute pending",
            lambda: next((t for t in _tasks(f"{name}_daemon-compute") if t.startswith("Pending")), None),
            60,
        )
        assert "no suitable node" in held, held
        # One node has one value per label, so here machine `compute` joins `cam`'s node the way
        # an operator would move it: its constraint now names that node's label. (Relabelling
        # the node would make swarm shut down daemon-cam, whose constraint no longer holds.)
        docker(
            "service",
            "update",
            "--detach",
            "--constraint-rm",
            "node.labels.dora-machine == compute",
            "--constraint-add",
            "node.labels.dora-machine == cam",
            f"{name}_daemon-compute",
            timeout=60,
        )

        final = _wait_for(
            "start finished",
            lambda: next(
                (t for t in _tasks(f"{name}_start") if t.split(" ")[0] in ("Complete", "Failed", "Rejected")), None
            ),
            300,
        )
        DOCKER_TIMINGS["swarm: deploy to dataflow end"] = time.monotonic() - started
        output = _logs(f"{name}_start")
        assert final.startswith("Complete"), f"{final}\n{output}\n" + "\n".join(
            _logs(f"{name}_{s}") for s in ("coordinator", "daemon-cam", "daemon-compute")
        )
        assert f"display: {count} boxes, {count} correct, lost 0" in output, output
        # The one-shot ran once; the daemon placed first was never moved or restarted.
        assert len(_tasks(f"{name}_start")) == 1 and len(_tasks(f"{name}_daemon-cam")) == 1
        # Every node flushed its spans when it stopped, before `start` completed; the service
        # logs may lag the receiver's output by a moment.
        _wait_for(
            "one trace per frame",
            lambda: "ok" if traces_through(span_lines(_logs(f"{name}_jaeger")), NODES) == count else None,
            20,
        )
    finally:
        docker("stack", "rm", name, timeout=120, check=False)
        _wait_for(
            "stack removed",
            lambda: (
                "ok"
                if not docker(
                    "ps", "-aq", "--filter", f"label=com.docker.stack.namespace={name}", timeout=30
                ).stdout.strip()
                else None
            ),
            120,
        )
        shutil.rmtree(folder, ignore_errors=True)


def _logs(service: str) -> str:
    done = docker("service", "logs", "--raw", service, timeout=60, check=False)
    return f"--- {service}\n{done.stdout}{done.stderr}"
