"""Each class of descriptor error, and that they are all reported together."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dora_zmq import DescriptorError, DescriptorErrors
from dora_zmq.descriptor import parse_dataflow


def _errors(text: str, *, check_paths: bool = False, **kwargs: object) -> list[DescriptorError]:
    with pytest.raises(DescriptorErrors) as info:
        parse_dataflow(textwrap.dedent(text), check_paths=check_paths, **kwargs)  # type: ignore[arg-type]
    for err in info.value.errors:
        assert err.hint, f"no hint: {err}"
    return info.value.errors


def _one(text: str, **kwargs: object) -> DescriptorError:
    [err] = _errors(text, **kwargs)
    return err


def test_errors_name_file_node_field_and_line() -> None:
    err = _one(
        """\
        nodes:
          - id: cam
            path: dynamic
            outputs: [image]
            inputs:
              tick: dora/timer/millis/oops
        """,
        path=Path("/data/flow.yml"),
    )
    assert (err.file, err.node, err.field, err.line) == ("/data/flow.yml", "cam", "inputs.tick", 6)
    assert str(err).startswith("/data/flow.yml:6: node 'cam', field 'inputs.tick': ")


def test_unknown_top_level_key_suggests() -> None:
    err = _one("nodes:\n  - {id: a, path: dynamic}\ndeplyo: {machine: x}\n")
    assert err.field == "deplyo" and err.line == 3
    assert "did you mean 'deploy'?" in (err.hint or "")


def test_unknown_node_field_suggests() -> None:
    err = _one("nodes:\n  - {id: a, path: dynamic, envs: {X: 1}}\n")
    assert err.node == "a" and err.field == "envs"
    assert "unknown node field 'envs'" in err.message
    assert "did you mean 'env'?" in (err.hint or "")


def test_unknown_input_field_suggests() -> None:
    err = _one("nodes:\n  - {id: a, path: dynamic, inputs: {t: {source: dora/timer/secs/1, sorce: x}}}\n")
    assert err.field == "inputs.t.sorce"
    assert "did you mean 'source'?" in (err.hint or "")


def test_unknown_operator_field_suggests() -> None:
    err = _one("nodes:\n  - id: r\n    operator: {python: a.py, input: {}}\n")
    assert err.node == "r" and err.field == "operator.input"
    assert "did you mean 'inputs'?" in (err.hint or "")


def test_unknown_custom_and_python_fields() -> None:
    errors = _errors("""\
        nodes:
          - {id: a, custom: {source: dynamic, env: {}}}
          - id: r
            operator: {python: {source: a.py, conda: x}}
        """)
    assert [e.field for e in errors] == ["custom.env", "operator.python.conda"]
    assert "did you mean 'envs'?" in (errors[0].hint or "")


def test_unknown_source_node_lists_nodes() -> None:
    err = _one("nodes:\n  - {id: cam, path: dynamic, outputs: [x]}\n  - {id: b, path: dynamic, inputs: {x: came/x}}\n")
    assert err.node == "b" and err.field == "inputs.x"
    assert "there is no node 'came'" in err.message
    assert "did you mean 'cam'?" in (err.hint or "") and "nodes: b, cam" in (err.hint or "")


def test_undeclared_output_lists_available_outputs() -> None:
    err = _one(
        "nodes:\n  - {id: cam, path: dynamic, outputs: [image, depth]}\n"
        "  - {id: b, path: dynamic, inputs: {x: cam/rgb}}\n"
    )
    assert "input 'x' reads 'cam/rgb', but node 'cam' has no output 'rgb' (its outputs: image, depth)" in err.message


def test_operator_input_error_points_at_operator_field() -> None:
    err = _one("""\
        nodes:
          - id: rt
            operators:
              - id: a
                python: a.py
                inputs: {x: ghost/y}
        """)
    assert err.node == "rt" and err.field == "operators[a].inputs.x" and err.line == 6


def test_single_operator_missing_output_shows_short_names() -> None:
    err = _one("""\
        nodes:
          - {id: det, operator: {python: d.py, outputs: [bbox]}}
          - {id: b, path: dynamic, inputs: {x: det/box}}
        """)
    assert "has no output 'box' (its outputs: bbox)" in err.message
    assert "did you mean 'det/bbox'?" in (err.hint or "")


def test_unknown_operator_in_reference() -> None:
    err = _one("""\
        nodes:
          - {id: rt, operators: [{id: a, python: a.py, outputs: [o]}]}
          - {id: b, path: dynamic, inputs: {x: rt/z/o}}
        """)
    assert "has no output 'z/o' (its outputs: a/o)" in err.message


def test_duplicate_node_ids_keep_first() -> None:
    err = _one("nodes:\n  - {id: a, path: dynamic}\n  - {id: a, path: dynamic}\n")
    assert err.node == "a" and err.line == 3
    assert "first at line 2, again at line 3" in err.message


def test_duplicate_mapping_keys_report_both_lines() -> None:
    err = _one("nodes:\n  - id: a\n    path: dynamic\n    path: dynamic\n")
    assert err.node == "a" and err.field == "path" and err.line == 4
    assert "duplicate key 'path' (first at line 3, again at line 4)" in err.message


def test_missing_script_names_folder(tmp_path: Path) -> None:
    err = _one("nodes:\n  - {id: a, path: nodes/run.py}\n", check_paths=True, working_dir=tmp_path)
    assert err.message == f"script 'nodes/run.py' not found (looked in {tmp_path / 'nodes'})"
    assert "relative to the folder of the YAML file" in (err.hint or "")


def test_missing_operator_file(tmp_path: Path) -> None:
    err = _one("nodes:\n  - {id: r, operator: {python: op.py}}\n", check_paths=True, working_dir=tmp_path)
    assert err.field == "operator.python"
    assert f"operator script 'op.py' not found (looked in {tmp_path})" == err.message


def test_script_that_is_a_directory_or_not_executable(tmp_path: Path) -> None:
    (tmp_path / "dir.py").mkdir()
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")
    errors = _errors(
        "nodes:\n  - {id: a, path: dir.py}\n  - {id: b, path: ./run.sh}\n",
        check_paths=True,
        working_dir=tmp_path,
    )
    assert "is a directory" in errors[0].message
    assert "'./run.sh' is not executable" in errors[1].message


def test_url_path_is_rejected() -> None:
    err = _one("nodes:\n  - {id: a, path: 'https://example.com/node.py'}\n")
    assert "URL paths are not supported" in err.message


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("dora/timer/millis/0", "'0' is not a positive integer"),
        ("dora/timer/millis/-5", "'-5' is not a positive integer"),
        ("dora/timer/secs/nan", "'nan' is not a positive number"),
        ("dora/timer/secs/0", "'0' is not a positive number"),
        ("dora/timer/hz/fast", "'fast' is not a positive number"),
        ("dora/timer/hours/1", "unknown dora source"),
        ("dora/timer/millis", "unknown dora source"),
        ("dora/timer/millis/1/2", "unknown dora source"),
    ],
)
def test_bad_timers(source: str, expected: str) -> None:
    err = _one(f"nodes:\n  - {{id: a, path: dynamic, inputs: {{t: '{source}'}}}}\n")
    assert expected in err.message
    assert "dora/timer/millis/N" in (err.hint or "")


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "true", "'3'", "[1]"])
def test_bad_queue_size(value: str) -> None:
    err = _one(
        f"nodes:\n  - {{id: a, path: dynamic, inputs: {{t: {{source: dora/timer/secs/1, queue_size: {value}}}}}}}\n"
    )
    assert err.field == "inputs.t.queue_size"
    assert "queue_size must be a positive integer" in err.message


@pytest.mark.parametrize("source", ["cam", "cam/", "/x", "a/b/c/d", "a//b"])
def test_bad_source_syntax(source: str) -> None:
    err = _one(f"nodes:\n  - {{id: a, path: dynamic, inputs: {{t: '{source}'}}}}\n")
    assert "invalid source" in err.message


def test_missing_id() -> None:
    err = _one("nodes:\n  - {id: a, path: dynamic}\n  - {path: dynamic}\n")
    assert err.node is None and err.field == "nodes[1]" and err.line == 3
    assert "has no `id`" in err.message


@pytest.mark.parametrize("value", ["''", "a/b"])
def test_bad_node_id(value: str) -> None:
    err = _one(f"nodes:\n  - {{id: {value}, path: dynamic}}\n")
    assert err.field == "nodes[0].id"


def test_two_of_path_and_operator() -> None:
    err = _one("nodes:\n  - id: a\n    path: dynamic\n    operator: {python: a.py}\n")
    assert err.node == "a" and err.field == "operator" and err.line == 4
    assert "both `path` and `operator`" in err.message


def test_runtime_node_rejects_node_level_ports() -> None:
    err = _one("nodes:\n  - id: a\n    operator: {python: a.py}\n    outputs: [x]\n")
    assert err.field == "outputs" and "belong to its operators" in (err.hint or "")


@pytest.mark.parametrize(("value", "kind"), [("", "null"), ("~", "null"), ("[1]", "a list"), ("{a: 1}", "a mapping")])
def test_bad_env_values(value: str, kind: str) -> None:
    err = _one(f"nodes:\n  - id: a\n    path: dynamic\n    env:\n      TOKEN: {value}\n")
    assert err.field == "env.TOKEN" and err.line == 5
    assert err.message == f"env value must be a string, number or boolean, got {kind}"


def test_env_must_be_a_mapping() -> None:
    err = _one("nodes:\n  - {id: a, path: dynamic, env: [A=1]}\n")
    assert "env must be a mapping" in err.message


def test_bad_args_and_outputs() -> None:
    errors = _errors("""\
        nodes:
          - {id: a, path: dynamic, args: {x: 1}}
          - {id: b, path: dynamic, args: [ok, [nested]]}
          - {id: c, path: dynamic, outputs: x}
          - {id: d, path: dynamic, outputs: [a/b, ~]}
        """)
    assert [e.field for e in errors] == ["args", "args[1]", "outputs", "outputs[0]", "outputs[1]"]


def test_operator_problems() -> None:
    errors = _errors("""\
        nodes:
          - id: r
            operators:
              - {python: a.py}
              - {id: b}
              - {id: c, wasm: c.wasm}
              - {id: d, python: d.py}
              - {id: d, python: e.py}
              - just-a-string
        """)
    messages = [e.message for e in errors]
    assert "operator has no `id`" in messages[0]
    assert "operator has no `python` file" in messages[1]
    assert "only Python operators are supported" in messages[2]
    assert "duplicate operator id 'd'" in messages[3]
    assert "an operator must be a mapping" in messages[4]
    assert len(errors) == 5


def test_empty_operators_list() -> None:
    err = _one("nodes:\n  - {id: r, operators: []}\n")
    assert "`operators` must be a non-empty list" in err.message


def test_conflicting_deploys() -> None:
    err = _one("nodes:\n  - {id: a, path: dynamic, deploy: {machine: x}, _unstable_deploy: {machine: y}}\n")
    assert "name different machines" in err.message


def test_document_shape_errors() -> None:
    assert "has no `nodes:` list" in _one("communication: {}\n").message
    assert "non-empty list" in _one("nodes: {a: 1}\n").message
    assert "each node must be a mapping" in _one("nodes: [a]\n").message


def test_yaml_syntax_error_is_one_error_with_line() -> None:
    err = _one("nodes:\n  - id: a\n  path: [\n", path=Path("flow.yml"))
    assert err.file == "flow.yml" and err.line is not None
    assert err.message.startswith("invalid YAML")
    assert "Traceback" not in str(err)


def test_many_errors_reported_together_in_line_order() -> None:
    errors = _errors("""\
        nodes:
          - id: cam
            path: dynamic
            ouputs: [image]
          - id: plot
            path: dynamic
            inputs:
              image: cam/image
              tick: dora/timer/hz/0
              more: {source: cam/image, queue_size: 0}
          - id: cam
            path: dynamic
          - path: dynamic
        """)
    assert [e.line for e in errors] == sorted(e.line or 0 for e in errors)
    assert [(e.node, e.field) for e in errors] == [
        ("cam", "ouputs"),
        ("plot", "inputs.image"),
        ("plot", "inputs.tick"),
        ("plot", "inputs.more.queue_size"),
        ("cam", "id"),
        (None, "nodes[3]"),
    ]


def test_broken_node_is_still_a_node_for_references() -> None:
    err = _one("""\
        nodes:
          - {id: cam, outputs: [x]}
          - {id: b, path: dynamic, inputs: {x: cam/x}}
        """)
    assert err.node == "cam" and "has none of" in err.message


def test_errors_type_is_also_a_descriptor_error() -> None:
    with pytest.raises(DescriptorError):
        parse_dataflow("nodes: []\n")
