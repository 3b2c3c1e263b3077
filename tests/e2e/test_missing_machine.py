"""A start that names a machine without a daemon fails after a timeout, clearly, leaving nothing."""

from __future__ import annotations

from pathlib import Path


FLOW = """
nodes:
  - id: here
    path: node.py
    outputs: [x]
  - id: there
    path: node.py
    deploy: {machine: robot-arm}
    inputs: {x: here/x}
"""


def test_missing_machine_fails_with_the_command_to_run(dora, local_cluster, tmp_path: Path) -> None:
    (tmp_path / "dataflow.yml").write_text(FLOW)
    (tmp_path / "node.py").write_text("from dora_zmq import Node\nNode()\n")
    cluster = local_cluster(DORA_ZMQ_MACHINE_WAIT="1")
    env = cluster.env
    cluster.coordinator()
    cluster.daemon(cwd=tmp_path)
    result = dora("start", "dataflow.yml", "--attach", env=env, cwd=tmp_path).wait(30)
    assert result.returncode == 1, result.output
    assert "no daemon for machine 'robot-arm' (nodes: there)" in result.stderr
    assert "dora-zmq daemon --machine-id robot-arm" in result.stderr
    listing = dora("list", env=env).wait(20)
    assert "failed" in listing.stdout
    assert dora("destroy", env=env).wait(30).returncode == 0
