"""Bad dataflow YAML through the real CLI: every problem printed at once, exit 1, no traceback.

Each error class has a unit test in ``tests/unit/descriptor``; here a few go end to end through
``check`` and ``run``, and ``run`` must start no node at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dora_zmq.testing import write_dataflow

_BAD = """
nodes:
  - id: camera
    path: missing_camera.py
    outputs: [image]
    colour: red
  - id: viewer
    path: viewer.py
    inputs:
      image: camera/image
      boxes: detector/boxes
      tick: dora/timer/millis/fast
"""

# (line, node, field, words of the message, words of the hint)
_EXPECTED = [
    (3, "camera", "path", "script 'missing_camera.py' not found", "relative to the folder of the YAML"),
    (5, "camera", "colour", "unknown node field 'colour'", "valid node fields"),
    (10, "viewer", "inputs.boxes", "there is no node 'detector'", "nodes: camera, viewer"),
    (11, "viewer", "inputs.tick", "invalid timer 'dora/timer/millis/fast'", "dora/timer/millis/N"),
]


@pytest.fixture
def bad_yaml(tmp_path: Path) -> Path:
    return write_dataflow(tmp_path, _BAD, files={"viewer.py": "print('must never run')\n"})


@pytest.mark.parametrize("command", ["check", "run"])
def test_every_problem_is_reported_with_file_line_node_field_and_hint(dora, bad_yaml: Path, command: str) -> None:
    result = dora(command, str(bad_yaml)).wait(30)
    assert result.returncode == 1, result.output
    assert "Traceback" not in result.output
    assert f"{len(_EXPECTED)} errors in dataflow descriptor" in result.output
    lines = [line.strip() for line in result.output.splitlines()]
    for line_no, node, field, message, hint in _EXPECTED:
        matching = [line for line in lines if line.startswith(f"- {bad_yaml}:{line_no}: ")]
        assert len(matching) == 1, (line_no, result.output)
        text = matching[0]
        assert f"node '{node}'" in text and f"field '{field}'" in text and message in text, text
        assert "(hint: " in text and hint in text, text
    assert "must never run" not in result.output
    assert not (bad_yaml.parent / "out").exists()  # run stopped before spawning anything


def test_yaml_syntax_and_duplicate_keys(dora, tmp_path: Path) -> None:
    syntax = tmp_path / "syntax.yml"
    syntax.write_text("nodes:\n  - id: a\n    path: [oops\n")
    dup = tmp_path / "dup.yml"
    (tmp_path / "a.py").write_text("")
    dup.write_text("nodes:\n  - id: a\n    path: a.py\n    path: a.py\n")
    for path, expected in ((syntax, "invalid YAML"), (dup, "duplicate key 'path' (first at line 3, again at line 4)")):
        result = dora("run", str(path)).wait(30)
        assert result.returncode == 1, result.output
        assert expected in result.output and str(path) in result.output, result.output
        assert "Traceback" not in result.output


def test_missing_descriptor_file(dora, tmp_path: Path) -> None:
    result = dora("check", str(tmp_path / "nosuch.yml")).wait(30)
    assert result.returncode == 1
    assert "cannot read the descriptor" in result.output and "Traceback" not in result.output
