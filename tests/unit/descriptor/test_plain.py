"""The parsed dataflow a daemon hands its nodes (``descriptor._plain``): the same records as a parse."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from dora_zmq.descriptor import Dataflow, load_dataflow, parse_dataflow
from dora_zmq.descriptor._plain import PLAIN_VERSION, from_plain, to_plain

REPO = Path(__file__).resolve().parents[3]
FLOWS = sorted((REPO / "dataflows").glob("*.yml")) + sorted((REPO / "tests").rglob("flows/*.yml"))

# Every field kind at once: timers, operators (single and several), restart limits, deploy,
# env, args, queue sizes, names, send_stdout_as, a dynamic node.
RICH = """
deploy: {machine: a}
nodes:
  - id: cam
    path: cam.py
    args: --fps 30
    env: {MODE: fast, N: "3"}
    inputs: {tick: dora/timer/millis/33, slow: {source: dora/timer/secs/2, queue_size: 1}}
    outputs: [image, log]
    send_stdout_as: log
    restart_policy: on-failure
    max_restarts: 3
    restart_delay: 0.5
    max_restart_delay: 4
    restart_window: 60
    name: Camera
    description: the front camera
    build: pip install -e .
    deploy: {machine: b}
  - id: det
    operators:
      - id: yolo
        python: yolo.py
        inputs: {image: cam/image}
        outputs: [bbox]
        name: detector
      - id: track
        python: track.py
        inputs: {bbox: det/yolo/bbox}
        outputs: [tracks]
  - id: one
    operator:
      python: one.py
      inputs: {image: {source: cam/image, queue_size: 5}}
      outputs: [x]
  - id: edge
    path: dynamic
    inputs: {tracks: det/track/tracks, x: one/op/x}
"""


def _same(a: Dataflow, b: Dataflow) -> None:
    for f in dataclasses.fields(Dataflow):
        if f.name not in ("raw", "_by_id"):
            assert getattr(a, f.name) == getattr(b, f.name), f.name
    assert dict(a.raw) == dict(b.raw)


@pytest.mark.parametrize("flow", [*FLOWS, "rich"], ids=lambda f: f if isinstance(f, str) else f.name)
def test_the_plain_form_gives_back_the_parsed_records(flow: Any, tmp_path: Path) -> None:
    if flow == "rich":
        parsed = parse_dataflow(RICH, working_dir=tmp_path, check_paths=False)
    else:
        parsed = load_dataflow(flow, check_paths=False)
    plain = json.loads(json.dumps(to_plain(parsed)))  # as it travels in NodeSetup
    _same(from_plain(plain, parsed.text), parsed)


def test_the_rich_flow_has_every_kind_of_field(tmp_path: Path) -> None:
    flow = from_plain(to_plain(parse_dataflow(RICH, working_dir=tmp_path, check_paths=False)), RICH)
    cam = flow.node("cam")
    assert cam.restart.max_restarts == 3 and cam.restart.delay_s == 0.5 and cam.machine == "b"
    assert [o.id for o in flow.node("det").operators] == ["yolo", "track"]
    assert flow.node("edge").kind.value == "dynamic" and flow.default_machine == "a"
    assert flow.subscribers("cam", "image") == [("det", "yolo/image"), ("one", "op/image")]


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [],
        {"v": PLAIN_VERSION + 1},
        {"v": PLAIN_VERSION},
        {"v": PLAIN_VERSION, "nodes": [{"id": 1}], "path": None, "working_dir": "/", "default_machine": None},
        {"v": PLAIN_VERSION, "nodes": "x", "path": None, "working_dir": "/", "default_machine": None},
    ],
)
def test_anything_else_is_a_value_error(bad: Any) -> None:
    with pytest.raises(ValueError):
        from_plain(bad, "nodes: []")


def test_a_wrong_type_deep_inside_is_a_value_error(tmp_path: Path) -> None:
    plain = to_plain(parse_dataflow(RICH, working_dir=tmp_path, check_paths=False))
    for path, value in [
        (("nodes", 0, "inputs", 0, 2), "ten"),  # queue size
        (("nodes", 0, "inputs", 0, 1, 0), "pipe"),  # source kind
        (("nodes", 0, "restart", 1), True),  # max_restarts
        (("nodes", 0, "env"), {"A": 1}),
        (("nodes", 1, "operators", 0), ["too", "short"]),
    ]:
        broken = json.loads(json.dumps(plain))
        target = broken
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(ValueError):
            from_plain(broken, RICH)
