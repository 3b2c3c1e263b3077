"""Every valid descriptor form becomes the right records."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from dora_zmq import DescriptorErrors
from dora_zmq.descriptor import (
    SINGLE_OPERATOR_ID,
    Dataflow,
    InputSpec,
    NodeKind,
    OutputRef,
    TimerSpec,
    load_dataflow,
    parse_dataflow,
)

CORPUS = Path(__file__).resolve().parents[2] / "data" / "descriptors" / "valid"


def _parse(text: str, **kwargs: object) -> Dataflow:
    return parse_dataflow(textwrap.dedent(text), check_paths=False, **kwargs)  # type: ignore[arg-type]


def test_short_inputs_and_outputs() -> None:
    flow = load_dataflow(CORPUS / "short_inputs.yml")
    camera, plot = flow.nodes
    assert camera.kind is NodeKind.CUSTOM
    assert camera.path == "nodes/camera.py"
    assert camera.executable == CORPUS / "nodes" / "camera.py"
    assert camera.is_python
    assert camera.outputs == ("image",)
    assert camera.line == 3
    assert plot.inputs["image"] == InputSpec("image", OutputRef("camera", "image"), 10, 12)
    assert plot.inputs["image"].source.topic == "camera/image"  # type: ignore[union-attr]


def test_long_inputs_with_and_without_queue_size() -> None:
    flow = load_dataflow(CORPUS / "long_inputs.yml")
    camera, plot = flow.nodes
    assert camera.inputs["tick"].queue_size == 1
    assert plot.inputs["image"].queue_size == 100
    assert plot.inputs["also_image"].queue_size == 10
    assert plot.inputs["also_image"].source == OutputRef("camera", "image")


def test_every_timer_form() -> None:
    inputs = load_dataflow(CORPUS / "timers.yml").node("clock").inputs
    assert inputs["fast"].source == TimerSpec(0.1, "dora/timer/millis/100")
    assert inputs["slow"].source == TimerSpec(2.0, "dora/timer/secs/2")
    assert inputs["half"].source == TimerSpec(0.5, "dora/timer/secs/0.5")
    rate = inputs["rate"].source
    assert isinstance(rate, TimerSpec) and rate.interval_s == pytest.approx(1 / 30)
    assert inputs["slow_rate"].source == TimerSpec(2.0, "dora/timer/hz/0.5")


def test_env_values_keep_their_yaml_text() -> None:
    env = load_dataflow(CORPUS / "env_and_args.yml").node("shell_args").env
    assert dict(env) == {
        "INT": "42",
        "FLOAT": "1.50",
        "BOOL": "true",
        "HEX": "0x1F",
        "TEXT": "hello",
        "QUOTED": "007",
        "EMPTY": "",
    }


def test_args_string_is_shell_split_and_list_keeps_scalar_text() -> None:
    flow = load_dataflow(CORPUS / "env_and_args.yml")
    assert flow.node("shell_args").args == ("--name", "two words", "-v")
    assert flow.node("list_args").args == ("--count", "3", "--ratio", "0.25", "--flag", "yes")


def test_custom_wrapper_is_a_custom_node() -> None:
    flow = load_dataflow(CORPUS / "custom_wrapper.yml")
    camera = flow.node("camera")
    assert camera.kind is NodeKind.CUSTOM
    assert camera.path == "nodes/camera.py"
    assert camera.executable == CORPUS / "nodes" / "camera.py"
    assert camera.args == ("--fps", "30")
    assert dict(camera.env) == {"LEVEL": "3", "MODE": "fast"}
    assert camera.outputs == ("image",)
    assert flow.node("plot").inputs["image"].source == OutputRef("camera", "image")


def test_single_operator_outputs_resolve_with_or_without_op_id() -> None:
    flow = load_dataflow(CORPUS / "single_operator.yml")
    detector = flow.node("detector")
    assert detector.kind is NodeKind.RUNTIME
    assert detector.path is None and detector.executable is None
    [op] = detector.operators
    assert op.id == SINGLE_OPERATOR_ID
    assert op.python == CORPUS / "operators" / "detector.py"
    assert op.source == "operators/detector.py"
    assert op.inputs["image"].id == "image"
    assert detector.inputs["op/image"].source == OutputRef("camera", "image")
    assert detector.outputs == ("op/bbox",)
    plot = flow.node("plot")
    assert plot.inputs["short"].source == OutputRef("detector", "op/bbox")
    assert plot.inputs["explicit"].source == OutputRef("detector", "op/bbox")
    assert flow.subscribers("detector", "op/bbox") == [("plot", "short"), ("plot", "explicit")]


def test_single_operator_with_explicit_id() -> None:
    flow = _parse("""\
        nodes:
          - id: det
            operator: {id: yolo, python: yolo.py, outputs: [bbox]}
          - id: plot
            path: dynamic
            inputs: {a: det/bbox, b: det/yolo/bbox}
        """)
    assert flow.node("det").operators[0].id == "yolo"
    assert {i.source for i in flow.node("plot").inputs.values()} == {OutputRef("det", "yolo/bbox")}


def test_multi_operators_union_and_references() -> None:
    flow = load_dataflow(CORPUS / "multi_operators.yml")
    vision = flow.node("vision")
    detector, tracker = vision.operators
    assert detector.name == "Object detector"
    assert tracker.python == CORPUS / "operators" / "tracker.py"
    assert tracker.source == "operators/tracker.py"
    assert set(tracker.inputs) == {"bbox", "image"}
    assert tracker.inputs["bbox"].source == OutputRef("vision", "detector/bbox")
    assert tracker.inputs["image"].queue_size == 1
    assert set(vision.inputs) == {"detector/image", "tracker/bbox", "tracker/image"}
    assert vision.inputs["tracker/bbox"].id == "tracker/bbox"
    assert vision.outputs == ("detector/bbox", "tracker/tracks")
    assert flow.node("plot").inputs["tracks"].source == OutputRef("vision", "tracker/tracks")
    assert OutputRef("vision", "tracker/tracks").topic == "vision/tracker/tracks"


def test_deploy_and_unstable_deploy() -> None:
    flow = load_dataflow(CORPUS / "deploy.yml")
    assert flow.default_machine == "base"
    assert flow.node("camera").machine == "robot"
    assert flow.node("plot").machine == "laptop"
    assert flow.node("printer").machine is None
    assert flow.machine_of("printer") == "base"
    assert flow.machines() == ["robot", "laptop", "base"]


def test_top_level_unstable_deploy_and_communication() -> None:
    flow = load_dataflow(CORPUS / "unstable_deploy_default.yml")
    assert flow.default_machine == "main"
    assert flow.raw["communication"] == {"_unstable_local": "Tcp"}


def test_dynamic_node() -> None:
    flow = load_dataflow(CORPUS / "dynamic.yml")
    edge = flow.node("edge")
    assert edge.kind is NodeKind.DYNAMIC
    assert edge.path == "dynamic" and edge.executable is None
    assert not edge.is_python
    assert edge.inputs["command"].source == OutputRef("controller", "command")


def test_program_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = tmp_path / "bin" / "my-tool"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", str(program.parent) + os.pathsep + os.environ.get("PATH", ""))
    text = "nodes:\n  - id: t\n    path: my-tool\n"
    node = parse_dataflow(text, working_dir=tmp_path / "elsewhere").node("t")
    assert node.executable == program
    assert not node.is_python


@pytest.mark.skipif(shutil.which("python3") is None, reason="no python3 on PATH")
def test_python3_on_path() -> None:
    flow = parse_dataflow("nodes:\n  - {id: p, path: python3, args: [-c, 'pass']}\n")
    node = flow.node("p")
    assert node.executable is not None and node.executable.is_absolute()
    assert node.executable.name.startswith("python3")
    assert node.args == ("-c", "pass")


def test_corpus_path_executable() -> None:
    node = load_dataflow(CORPUS / "path_executable.yml").node("shell")
    assert node.executable is not None and node.executable.name == "sh"


def test_absolute_path_and_home(tmp_path: Path) -> None:
    script = tmp_path / "abs.py"
    script.write_text("")
    flow = parse_dataflow(f"nodes:\n  - id: a\n    path: {script}\n", working_dir=Path("/"))
    assert flow.node("a").executable == script


def test_optional_fields_are_stored() -> None:
    flow = load_dataflow(CORPUS / "optional_fields.yml")
    camera = flow.node("camera")
    assert camera.name == "Camera"
    assert camera.description == "Reads frames from the webcam."
    assert camera.build == "pip install opencv-python"
    assert camera.send_stdout_as == "logs"
    assert camera.restart_policy == "always"
    assert flow.node("plot").restart_policy == "on-failure"
    assert flow.node("plot").name is None


def test_anchors_and_merge_keys() -> None:
    flow = load_dataflow(CORPUS / "anchors.yml")
    first, second = flow.nodes
    assert second.id == "second" and second.path == first.path
    assert dict(second.env) == {"LEVEL": "debug"}
    assert second.inputs["tick"].source == TimerSpec(0.1, "dora/timer/millis/100")


def test_self_reference_is_allowed() -> None:
    flow = load_dataflow(CORPUS / "cycle.yml")
    assert flow.node("ping").inputs["self"].source == OutputRef("ping", "out")
    assert flow.downstream_nodes("ping") == {"ping", "pong"}


def test_raw_is_the_plain_yaml_and_text_is_kept() -> None:
    text = "nodes:\n  - id: a\n    path: dynamic\n    env: {N: 1.50}\n"
    flow = parse_dataflow(text)
    assert flow.text == text
    assert flow.raw == {"nodes": [{"id": "a", "path": "dynamic", "env": {"N": 1.5}}]}
    assert flow.path is None
    assert flow.working_dir == Path.cwd()


def test_check_paths_false_resolves_lexically(tmp_path: Path) -> None:
    flow = parse_dataflow(
        "nodes:\n  - {id: a, path: sub/missing.py}\n  - {id: b, path: no-such-program-xyz}\n"
        "  - {id: c, operator: {python: ops/missing.py}}\n",
        working_dir=tmp_path,
        check_paths=False,
    )
    assert flow.node("a").executable == tmp_path / "sub" / "missing.py"
    assert flow.node("a").is_python
    assert flow.node("b").executable is None
    assert flow.node("c").operators[0].python == tmp_path / "ops" / "missing.py"


def test_working_dir_defaults_to_the_file_folder(tmp_path: Path) -> None:
    (tmp_path / "node.py").write_text("")
    yml = tmp_path / "flow.yml"
    yml.write_text("nodes:\n  - {id: a, path: node.py}\n")
    flow = load_dataflow(str(yml))
    assert flow.working_dir == tmp_path
    assert flow.node("a").executable == tmp_path / "node.py"


def test_unreadable_file_is_a_descriptor_error(tmp_path: Path) -> None:
    with pytest.raises(DescriptorErrors) as info:
        load_dataflow(tmp_path / "absent.yml")
    assert "cannot read the descriptor" in str(info.value)
    assert "absent.yml" in str(info.value)


def test_null_inputs_outputs_and_args_mean_none() -> None:
    node = _parse("nodes:\n  - id: a\n    path: dynamic\n    inputs:\n    outputs:\n    args:\n").node("a")
    assert dict(node.inputs) == {} and node.outputs == () and node.args == ()


def test_models_are_frozen() -> None:
    node = _parse("nodes:\n  - {id: a, path: dynamic, env: {X: 1}}\n").node("a")
    with pytest.raises(AttributeError):
        node.id = "b"  # type: ignore[misc]
    with pytest.raises(TypeError):
        node.env["X"] = "2"  # type: ignore[index]
