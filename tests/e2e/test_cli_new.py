"""`dora-zmq new` creates starter files that run as they are."""

from __future__ import annotations

from pathlib import Path


def test_new_dataflow_runs(dora, tmp_path: Path) -> None:
    assert dora("new", "demo", cwd=tmp_path).wait(20).returncode == 0
    result = dora("run", "demo/dataflow.yml", cwd=tmp_path).wait(40)
    assert result.returncode == 0, result.output
    assert "numbers: [9, 81]" in result.stdout
    again = dora("new", "demo", cwd=tmp_path).wait(20)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_new_node_and_operator_templates_are_valid_python(dora, tmp_path: Path) -> None:
    for kind in ("node", "operator"):
        assert dora("new", f"my_{kind}", "--kind", kind, cwd=tmp_path).wait(20).returncode == 0
        compile((tmp_path / f"my_{kind}.py").read_text(), f"my_{kind}.py", "exec")
