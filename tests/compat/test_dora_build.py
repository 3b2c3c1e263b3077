"""Differential: ``build:`` on dora-rs 1.1 and on dora_zmq.

``run`` runs the build commands first on both (each line a command, quotes group, in the
dataflow's folder, with the node's env); a failing build stops the run before any node starts;
``build FILE`` alone runs them too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ._dora_harness import run_both

pytestmark = pytest.mark.timeout(150)

FLOW = """
nodes:
  - id: reader
    path: reader.py
    env:
      GREETING: hello
    build: |
      sh -c "echo built-$GREETING >> artefact.txt"
      sh -c "echo second line >> artefact.txt"
"""

READER = """
from dora import Node
from compat_record import record

node = Node()
record("reader", "artefact", lines=open("artefact.txt").read().splitlines())
"""


def test_run_builds_first(tmp_path: Path, reference_python: Path) -> None:
    ref, ours = run_both(tmp_path, FLOW, {"reader.py": READER}, reference_python)
    assert ref.returncode == 0, ref.output[-3000:]
    assert ours.returncode == 0, ours.output[-3000:]
    assert (
        ours.of("reader")
        == ref.of("reader")
        == [{"node": "reader", "what": "artefact", "lines": ["built-hello", "second line"]}]
    )


def test_failing_build_starts_nothing(tmp_path: Path, reference_python: Path) -> None:
    flow = FLOW.replace('sh -c "echo second line >> artefact.txt"', "false")
    ref, ours = run_both(tmp_path, flow, {"reader.py": READER}, reference_python)
    assert ref.returncode != 0 and ours.returncode != 0
    assert ref.records == ours.records == []
    assert "build command `false` exited with code 1" in ours.output, ours.output[-2000:]


def test_build_command(tmp_path: Path, reference_python: Path) -> None:
    ref, ours = run_both(tmp_path, FLOW, {"reader.py": READER}, reference_python, args=("build", "flow.yml"))
    assert ref.returncode == 0, ref.output[-3000:]
    assert ours.returncode == 0, ours.output[-3000:]
    for impl in ("dora", "dora_zmq"):
        assert (tmp_path / impl / "artefact.txt").read_text().splitlines() == ["built-hello", "second line"], impl


def test_build_makes_the_node_program(tmp_path: Path, reference_python: Path) -> None:
    """A program that only exists once built passes the checks before the build, on both."""
    flow = """
    nodes:
      - id: made
        path: made.py
        build: cp made.txt made.py
    """
    made = """
    from dora import Node
    from compat_record import record

    node = Node()
    record("made", "ran")
    """
    programs = {"made.txt": made}
    ref, ours = run_both(tmp_path, flow, programs, reference_python)
    assert ref.returncode == 0, ref.output[-3000:]
    assert ours.returncode == 0, ours.output[-3000:]
    assert ours.of("made") == ref.of("made") == [{"node": "made", "what": "ran"}]
