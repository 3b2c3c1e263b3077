"""Shared fixtures: every dataflow a test runs is owned, and nothing may outlive the test."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from dora_zmq.testing import DataflowProcess, kill_tagged

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _bundle_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Shipped dataflow folders are cached in the session's own folder, not in ~/.cache."""
    os.environ.setdefault("DORA_ZMQ_CACHE_DIR", str(tmp_path_factory.mktemp("bundle-cache")))


@pytest.fixture
def dora() -> Iterator[Callable[..., DataflowProcess]]:
    """Start ``dora-zmq`` commands; at teardown kill what is left and fail on leaked processes."""
    started: list[DataflowProcess] = []

    def start(*args: str, **kwargs: Any) -> DataflowProcess:
        p = DataflowProcess(list(args), **kwargs)
        started.append(p)
        return p

    yield start
    leaks = []
    for p in started:
        if p.proc.poll() is None:
            p.__exit__(None, None, None)
            continue
        leaks += kill_tagged(p.tag)
        p.__exit__(None, None, None)
    assert not leaks, f"processes outlived the test: {leaks}"


@pytest.fixture
def flow_dir(tmp_path: Path) -> Path:
    """A scratch folder for a test's dataflow YAML and node scripts."""
    return tmp_path


def copy_example(name: str, dest: Path) -> Path:
    """Copy dataflows/<name> (a YAML file and its folder of the same stem) into ``dest``."""
    src = REPO / "dataflows"
    shutil.copy(src / f"{name}.yml", dest / f"{name}.yml")
    if (src / name).is_dir():
        shutil.copytree(src / name, dest / name)
    return dest / f"{name}.yml"
