"""Differential: ``send_stdout_as`` on dora-rs 1.1 and on dora_zmq: each line the node prints
(after ``Node()``) is a one-string message, newline included."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._dora_harness import EVENT_SINK, run_both, run_flow

pytestmark = pytest.mark.timeout(150)

FLOW = """
nodes:
  - id: talker
    path: talker.py
    send_stdout_as: lines
    outputs: [lines]
  - id: sink
    path: sink.py
    inputs:
      lines: talker/lines
"""

TALKER = """
import time
from dora import Node

node = Node()
print("hello one", flush=True)
print("hello two", flush=True)
time.sleep(0.3)  # dora-rs sends the lines from its daemon: give them time to get out
"""


def test_stdout_lines_become_an_output(tmp_path: Path, reference_python: Path) -> None:
    ref, ours = run_both(tmp_path, FLOW, {"talker.py": TALKER, "sink.py": EVENT_SINK}, reference_python)
    assert ref.returncode == 0, ref.output[-3000:]
    assert ours.returncode == 0, ours.output[-3000:]
    expected = [
        {
            "node": "sink",
            "what": "event",
            "type": "INPUT",
            "id": "lines",
            "kind": "dora",
            "value": ["hello one\n"],
            "arrow_type": "string",
        },
        {
            "node": "sink",
            "what": "event",
            "type": "INPUT",
            "id": "lines",
            "kind": "dora",
            "value": ["hello two\n"],
            "arrow_type": "string",
        },
        {"node": "sink", "what": "event", "type": "INPUT_CLOSED", "id": "lines", "kind": "dora"},
        {"node": "sink", "what": "event", "type": "STOP", "id": "ALL_INPUTS_CLOSED", "kind": "dora"},
    ]
    assert ref.of("sink") == ours.of("sink") == expected
    assert "hello one" in ours.output  # the lines are still the node's output too


def test_last_lines_arrive_before_the_input_closes(tmp_path: Path) -> None:
    """A node that prints and exits at once: dora_zmq sends its lines before the end-of-stream
    (dora-rs 1.1 was seen delivering them after INPUT_CLOSED and STOP, or not at all)."""
    talker = TALKER.replace("time.sleep(0.3)", "")
    ours = run_flow("dora_zmq", tmp_path, FLOW, {"talker.py": talker, "sink.py": EVENT_SINK}, None)
    assert ours.returncode == 0, ours.output[-3000:]
    assert [(e["type"], e.get("value")) for e in ours.of("sink")] == [
        ("INPUT", ["hello one\n"]),
        ("INPUT", ["hello two\n"]),
        ("INPUT_CLOSED", None),
        ("STOP", None),
    ]
