"""Graph queries, serialisation and rendering of a parsed Dataflow."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from dora_zmq._errors import DescriptorErrors
from dora_zmq.descriptor import Dataflow, NodeKind, NodeSpec, OutputRef, parse_dataflow

FLOW = textwrap.dedent("""\
    deploy: {machine: hub}
    nodes:
      - id: camera
        path: camera.py
        deploy: {machine: robot}
        inputs:
          tick: dora/timer/millis/100
        outputs: [image]
      - id: vision
        operators:
          - id: detector
            python: detector.py
            inputs: {image: camera/image}
            outputs: [bbox]
          - id: tracker
            python: tracker.py
            inputs: {bbox: vision/detector/bbox}
            outputs: [tracks]
      - id: plot
        path: dynamic
        inputs:
          image: camera/image
          tracks: {source: vision/tracker/tracks, queue_size: 1}
    """)


@pytest.fixture
def flow(tmp_path: Path) -> Dataflow:
    return parse_dataflow(FLOW, working_dir=tmp_path, check_paths=False)


def test_node_lookup_and_unknown_node(flow: Dataflow) -> None:
    assert isinstance(flow.node("camera"), NodeSpec)
    with pytest.raises(KeyError, match="no node 'nope' \\(nodes: camera, plot, vision\\)"):
        flow.node("nope")


def test_machines(flow: Dataflow) -> None:
    assert flow.machines() == ["robot", "hub"]
    assert flow.machine_of("camera") == "robot"
    assert flow.machine_of("plot") == "hub"


def test_machines_without_any_deploy() -> None:
    flow = parse_dataflow("nodes:\n  - {id: a, path: dynamic}\n")
    assert flow.machines() == [""]
    assert flow.machine_of("a") == ""


def test_subscribers(flow: Dataflow) -> None:
    assert flow.subscribers("camera", "image") == [("vision", "detector/image"), ("plot", "image")]
    assert flow.subscribers("vision", "detector/bbox") == [("vision", "tracker/bbox")]
    assert flow.subscribers("vision", "tracker/tracks") == [("plot", "tracks")]
    assert flow.subscribers("plot", "anything") == []


def test_downstream_and_upstream(flow: Dataflow) -> None:
    assert flow.downstream_nodes("camera") == {"vision", "plot"}
    assert flow.downstream_nodes("vision") == {"vision", "plot"}
    assert flow.downstream_nodes("plot") == set()
    assert flow.upstream_nodes("camera") == set()
    assert flow.upstream_nodes("plot") == {"camera", "vision"}
    assert flow.upstream_nodes("vision") == {"camera", "vision"}


def test_to_dict_is_json_ready(flow: Dataflow, tmp_path: Path) -> None:
    data = flow.to_dict()
    json.dumps(data)
    assert data["working_dir"] == str(tmp_path)
    assert data["default_machine"] == "hub"
    camera, vision, plot = data["nodes"]
    assert camera["kind"] == "custom" and camera["executable"] == str(tmp_path / "camera.py")
    assert camera["inputs"] == {"tick": {"source": "dora/timer/millis/100", "queue_size": 10}}
    assert vision["kind"] == "runtime" and vision["outputs"] == ["detector/bbox", "tracker/tracks"]
    assert vision["operators"][1]["inputs"]["bbox"]["source"] == "vision/detector/bbox"
    assert plot["kind"] == NodeKind.DYNAMIC.value
    assert plot["inputs"]["tracks"] == {"source": "vision/tracker/tracks", "queue_size": 1}


def test_mermaid_has_every_node_and_edge(flow: Dataflow) -> None:
    text = flow.mermaid()
    assert text.startswith("flowchart TB\n")
    assert '"camera"' in text and '"vision<br/>detector, tracker"' in text and '"plot"' in text
    assert '[/"dora/timer/millis/100"/]' in text
    assert text.count("-->") == 5
    assert '-- "image as detector/image" -->' in text
    assert '-- "tracker/tracks as tracks" -->' in text


def test_mermaid_escapes_quotes() -> None:
    # ids cannot hold a quote any more (dora's id characters); the labels stay escaped anyway
    from dora_zmq.descriptor.models import _mermaid_label

    assert _mermaid_label('a"b') == '"a#quot;b"'
    with pytest.raises(DescriptorErrors, match="node id 'a\"b' contains '\"'"):
        parse_dataflow('nodes:\n  - {id: "a\\"b", path: dynamic}\n')


def test_output_ref_topic() -> None:
    assert OutputRef("rt", "op/out").topic == "rt/op/out"


def test_dataflows_compare_by_content(tmp_path: Path) -> None:
    one = parse_dataflow(FLOW, working_dir=tmp_path, check_paths=False)
    two = parse_dataflow(FLOW, working_dir=tmp_path, check_paths=False)
    assert one == two
