"""Whatever stops a daemon from starting a node is that node's failure, reported with its reason.

Before: a NUL byte in a node's ``env`` passed validation and ``Popen`` raised ``ValueError``,
which the daemon did not catch (its loop died, the dataflow stayed in "spawning" for ever); a
dataflow id from the coordinator was joined to paths unchecked (``../..`` escapes the run
folder that is later removed). An in-process daemon between a stand-in coordinator (so a
SpawnNodes message can say what a real coordinator never would) and the real supervisor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from dora_zmq import _control as ctl

from ._rig import DaemonRig

pytestmark = pytest.mark.timeout(60)


class _Rig(DaemonRig):
    """An in-process daemon registered with a stand-in coordinator (a ROUTER)."""

    def spawn(self, df: str, yaml: str, working_dir: Path, nodes: list[str]) -> list[ctl.NodeExited]:
        self.coordinator.send(ctl.SpawnNodes(df, "test", yaml, str(working_dir), nodes), to=self.peer)
        return [self.recv(ctl.NodeExited)[1] for _ in nodes]


@pytest.fixture
def rig() -> Iterator[_Rig]:
    r = _Rig()
    try:
        yield r
    finally:
        r.close()


def test_a_nul_byte_the_coordinator_let_through_fails_the_node(rig: _Rig, tmp_path: Path) -> None:
    (tmp_path / "node.py").write_text("print('never runs')\n")
    yaml = 'nodes:\n  - id: a\n    path: node.py\n    env: {GREETING: "hi\\0there"}\n'
    (exited,) = rig.spawn("df-nul", yaml, tmp_path, ["a"])
    assert exited.node == "a" and exited.failed
    assert "NUL byte" in exited.reason, exited.reason
    assert rig.thread.is_alive()


def test_any_exception_from_a_spawn_is_a_node_failure(
    rig: _Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "node.py").write_text("print('never runs')\n")

    def broken_spawn(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the kernel said no")

    monkeypatch.setattr(rig.daemon.supervisor, "spawn", broken_spawn)
    yaml = "nodes:\n  - id: a\n    path: node.py\n  - id: b\n    path: node.py\n"
    exits = rig.spawn("df-broken", yaml, tmp_path, ["a", "b"])
    assert sorted(e.node for e in exits) == ["a", "b"]
    assert all(e.failed and "the kernel said no" in e.reason for e in exits), exits
    assert rig.thread.is_alive()


@pytest.mark.parametrize("df", ["../../escaped", "/tmp/abs", "a/b", ".hidden", "", "x" * 200])
def test_an_unsafe_dataflow_id_is_refused(rig: _Rig, tmp_path: Path, df: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "node.py").write_text("print('never runs')\n")
    (exited,) = rig.spawn(df, "nodes:\n  - id: a\n    path: node.py\n", work, ["a"])
    assert exited.failed and "not a valid dataflow id" in exited.reason
    assert not (tmp_path / "escaped").exists()
    assert not (work / "out").exists()  # no log folder made from it either


def test_dataflow_id_rule() -> None:
    assert ctl.is_safe_dataflow_id("1bcff426-5e0c-4c7a-9d51-2f0a1b2c3d4e")
    assert ctl.is_safe_dataflow_id("df-1234_abc.v2")
    for bad in ("..", "a/../b", "a/b", "/abs", ".x", "", "a\0b", "a b", "é"):
        assert not ctl.is_safe_dataflow_id(bad), bad


def test_a_node_missing_from_the_descriptor_is_reported_and_the_others_spawn(rig: _Rig, tmp_path: Path) -> None:
    (tmp_path / "node.py").write_text("print('ran')\n")
    exits = rig.spawn("df-ghost", "nodes:\n  - id: a\n    path: node.py\n", tmp_path, ["ghost", "a"])
    by_node = {e.node: e for e in exits}
    assert by_node["ghost"].failed and "not in the dataflow" in by_node["ghost"].reason
    assert not by_node["a"].failed, by_node["a"]  # ran and exited 0 (it registers with no one)
