"""Shared fixtures: every dataflow a test runs is owned, and nothing may outlive the test."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from dora_zmq.testing import DataflowProcess, free_tcp_address, kill_tagged

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


@dataclass
class LocalCluster:
    """A coordinator and daemons on this machine, started through the test's ``dora`` fixture."""

    dora: Callable[..., DataflowProcess]
    env: dict[str, str]  # DORA_ZMQ_COORDINATOR and the test's extras: pass it to every command

    @property
    def address(self) -> str:
        return self.env["DORA_ZMQ_COORDINATOR"]

    def coordinator(self, *args: str, **kwargs: Any) -> DataflowProcess:
        """``dora-zmq coordinator --bind ADDRESS ARGS``, once it listens."""
        p = self.dora("coordinator", "--bind", self.address, *args, env=self.env, **kwargs)
        p.wait_for_line("coordinator listening")
        return p

    def daemon(self, *args: str, timeout: float = 20.0, **kwargs: Any) -> DataflowProcess:
        """``dora-zmq -v daemon ARGS``, once it has registered with the coordinator."""
        p = self.dora("-v", "daemon", *args, env=self.env, **kwargs)
        p.wait_for_line("registered with the coordinator", timeout=timeout)
        return p


@pytest.fixture
def local_cluster(dora: Callable[..., DataflowProcess]) -> Callable[..., LocalCluster]:
    """``local_cluster(**env)``: a :class:`LocalCluster` at a free address, nothing started yet."""

    def make(**env: str) -> LocalCluster:
        return LocalCluster(dora, {"DORA_ZMQ_COORDINATOR": free_tcp_address(), **env})

    return make


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
