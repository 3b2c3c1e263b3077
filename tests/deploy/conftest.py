"""Fixtures of the docker tests: one image per test session, compose projects owned by a test."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from ._compose import REPO
from ._docker import DOCKER_TIMINGS, TEST_OVERRIDE, ComposeProject, base_image, docker, require_engine, shared_dir


@pytest.fixture(scope="session")
def docker_image() -> Iterator[str]:
    """The dora image, built once per session through Compose (BuildKit): later builds hit its cache.

    On vfs every build and container costs seconds, so the docker tests share this one image;
    it is removed at the end of the session.
    """
    require_engine()
    tag = f"dora-zmq-test:{uuid.uuid4().hex[:8]}"
    base = base_image()
    env = {"DORA_ZMQ_TEST_BASE_IMAGE": base} if base else {}
    builder = ComposeProject(tag, REPO / "dataflows", overrides=[TEST_OVERRIDE], extra_env=env)
    started = time.monotonic()
    builder.run("build", "coordinator", timeout=600)
    DOCKER_TIMINGS["image build"] = time.monotonic() - started
    try:
        yield tag
    finally:
        docker("image", "rm", "--force", tag, check=False, timeout=120)
        # Compose builds once per service: the earlier builds' images are left untagged.
        docker("image", "prune", "--force", "--filter", "label=dora-zmq.test=true", check=False, timeout=300)


@pytest.fixture
def compose(docker_image: str) -> Iterator[Callable[..., ComposeProject]]:
    """Make compose projects on the session's image; each is taken down (volumes too) at teardown."""
    made: list[ComposeProject] = []

    def make(dataflows: Path, overrides: list[Path], extra_env: dict[str, str] | None = None) -> ComposeProject:
        base = base_image()
        env = {"DORA_ZMQ_TEST_BASE_IMAGE": base} if base else {}
        project = ComposeProject(docker_image, dataflows, overrides=overrides, extra_env={**env, **(extra_env or {})})
        made.append(project)
        return project

    yield make
    for project in made:
        project.down()


@pytest.fixture
def forever_dataflows() -> Iterator[Path]:
    """A copy of ./dataflows where multi.yml never ends (the camera's COUNT 0 means no limit)."""
    folder = shared_dir("dora-zmq-flows-")
    try:
        shutil.copytree(
            REPO / "dataflows", folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("out", "__pycache__")
        )
        multi = folder / "multi.yml"
        text = multi.read_text()
        assert "COUNT: 30" in text, "multi.yml changed: update the never-ending copy"
        multi.write_text(text.replace("COUNT: 30", "COUNT: 0"))
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if DOCKER_TIMINGS:
        terminalreporter.write_line("docker steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in DOCKER_TIMINGS.items()))
