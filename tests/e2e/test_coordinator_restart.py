"""A daemon registers again with a coordinator that restarted."""

from __future__ import annotations

import signal
from pathlib import Path


def test_daemon_registers_again_after_coordinator_restart(dora, local_cluster, tmp_path: Path) -> None:
    cluster = local_cluster()
    address, env = cluster.address, cluster.env
    first = cluster.coordinator(cwd=tmp_path)
    cluster.daemon("--machine-id", "m1", cwd=tmp_path)
    first.send_signal(signal.SIGTERM)
    assert first.wait(20).returncode == 0
    second = dora("-v", "coordinator", "--bind", address, env=env, cwd=tmp_path)
    second.wait_for_line("daemon 'm1' connected", timeout=20)
    (tmp_path / "n.py").write_text("from dora_zmq import Node\nprint('ran on m1', Node().machine)\n")
    (tmp_path / "d.yml").write_text("nodes:\n  - id: n\n    path: n.py\n    deploy: {machine: m1}\n")
    result = dora("start", "d.yml", "--attach", env=env, cwd=tmp_path).wait(30)
    assert result.returncode == 0, result.output
    assert "ran on m1 m1" in result.stdout
    assert dora("destroy", env=env).wait(30).returncode == 0
