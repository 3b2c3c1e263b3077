"""A real Docker engine for the docker tests: finding it, owning compose projects and commands.

The engine is provisioned by ``.ci/docker-engine.sh start`` on CI (and on a machine like it);
on a developer's machine any engine with Compose v2 does. Without one the docker tests skip
with the reason, unless ``DORA_ZMQ_REQUIRE_DOCKER=1`` (set by .ci/run), where they fail: CI
must run them, not skip them.

Every docker command is a child of the test, bounded by a timeout, killed by its pid when the
test ends. Everything the tests create in the engine carries a per-run name (image tag,
compose project) and is removed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

import pytest

from dora_zmq.testing import DataflowProcess

from ._compose import COMPOSE_FILE, REPO

TEST_OVERRIDE = Path(__file__).with_name("compose.test.yml")
KEYS_OVERRIDE = Path(__file__).with_name("compose.test-keys.yml")
PORT_OVERRIDE = Path(__file__).with_name("compose.test-port.yml")
# The offline base image .ci/docker-engine.sh makes (no registry to pull python:3.11-slim from).
CI_BASE_IMAGE = "dora-zmq-ci/base:latest"
PROVISION = "sudo bash .ci/docker-engine.sh start"
# Seconds each docker step took, printed at the end of the session (conftest.py).
DOCKER_TIMINGS: dict[str, float] = {}


def docker(
    *args: str, timeout: float = 120.0, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run one ``docker`` command to completion (killed at ``timeout``)."""
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL
    )
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def engine_unavailable() -> str | None:
    """Why the docker tests cannot run here, or None."""
    if shutil.which("docker") is None:
        return f"no docker CLI on PATH (provision with `{PROVISION}`)"
    try:
        server = docker("version", "--format", "{{.Server.Version}}", timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "the Docker engine did not answer within 20 s"
    if server.returncode != 0:
        return f"no Docker engine answers ({server.stderr.strip()[:200]}); provision with `{PROVISION}`"
    compose = docker("compose", "version", "--short", timeout=20, check=False)
    if compose.returncode != 0 or not compose.stdout.strip().lstrip("v").startswith("2"):
        return f"Compose v2 (`docker compose`) is not installed (provision with `{PROVISION}`)"
    return None


def require_engine() -> None:
    """Skip (or fail, when ``DORA_ZMQ_REQUIRE_DOCKER=1``) without a usable engine."""
    why = engine_unavailable()
    if why is None:
        return
    if os.environ.get("DORA_ZMQ_REQUIRE_DOCKER") == "1":
        pytest.fail(f"DORA_ZMQ_REQUIRE_DOCKER=1 but {why}", pytrace=False)
    pytest.skip(why)


def base_image() -> str | None:
    """The base to build deploy/Dockerfile on: the CI one if present, else the Dockerfile's default."""
    chosen = os.environ.get("DORA_ZMQ_TEST_BASE_IMAGE")
    if chosen:
        return chosen
    if docker("image", "inspect", CI_BASE_IMAGE, check=False, timeout=30).returncode == 0:
        return CI_BASE_IMAGE
    return None


def shared_dir(prefix: str) -> Path:
    """A temporary folder the image's user (uid 1000) can read: pytest's tmp_path is 0700 root."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


# A docker command as a DataflowProcess (the project's owned-process helper: lines collected,
# process group killed by pid at the end, leaks found by tag): its Python execs the command.
_EXEC = "import os, sys; os.execvp(sys.argv[1], sys.argv[1:])"


def background(argv: Sequence[str], env: dict[str, str]) -> DataflowProcess:
    """Start ``argv`` (a docker command) left running; close it with ``__exit__``."""
    return DataflowProcess([], python_args=["-c", _EXEC, *argv], env=env)


class ComposeProject:
    """One ``docker compose -p NAME -f ...`` project: its commands, its containers, its removal."""

    def __init__(
        self, image: str, dataflows: Path, *, overrides: Sequence[Path] = (), extra_env: dict[str, str] | None = None
    ) -> None:
        self.name = f"dora-zmq-test-{uuid.uuid4().hex[:8]}"
        self.files = [COMPOSE_FILE, *overrides]
        self.env = dict(os.environ)
        self.env.update({"DORA_ZMQ_TEST_IMAGE": image, "DORA_ZMQ_TEST_DATAFLOWS": str(dataflows)})
        self.env.update(extra_env or {})
        self.background: list[DataflowProcess] = []

    def argv(self, *args: str) -> list[str]:
        files = [a for f in self.files for a in ("-f", str(f))]
        return ["docker", "compose", "-p", self.name, "--project-directory", str(REPO), *files, *args]

    def run(self, *args: str, timeout: float = 180.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """One compose command to completion."""
        done = subprocess.run(
            self.argv(*args), capture_output=True, text=True, timeout=timeout, env=self.env, stdin=subprocess.DEVNULL
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done

    def start(self, *args: str) -> DataflowProcess:
        """A compose command left running (``logs -f``), closed with the project."""
        return self.own(background(self.argv(*args), self.env))

    def own(self, command: DataflowProcess) -> DataflowProcess:
        """Close ``command`` with the project."""
        self.background.append(command)
        return command

    def logs(self, service: str) -> str:
        """A service's output, without compose's prefix."""
        return self.run("logs", "--no-color", "--no-log-prefix", service, timeout=60).stdout

    def containers(self) -> dict[str, dict[str, Any]]:
        """``docker inspect`` of each container of the project, by service name (stopped ones too)."""
        ids = self.run("ps", "--all", "--quiet", timeout=60).stdout.split()
        if not ids:
            return {}
        found = json.loads(docker("inspect", *ids, timeout=60).stdout)
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in found}

    def wait_healthy(self, service: str, timeout: float) -> None:
        """Until compose reports ``service`` healthy (its healthcheck passed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.containers().get(service, {}).get("State", {})
            if state.get("Health", {}).get("Status") == "healthy":
                return
            if state.get("Status") == "exited":
                break
            time.sleep(1)  # polling the engine's view; no event to wait on from here
        raise AssertionError(f"{service} not healthy within {timeout} s:\n{self.logs(service)}")

    def down(self) -> None:
        """Remove the project's containers, networks and volumes; close what is still running."""
        try:
            self.run("down", "--volumes", "--remove-orphans", timeout=180, check=False)
        finally:
            for command in self.background:
                command.__exit__(None, None, None)


def span_lines(text: str) -> list[str]:
    """The OTLP receiver's ``span ...`` lines in a service's logs."""
    return [line for line in text.splitlines() if line.startswith("span ")]
