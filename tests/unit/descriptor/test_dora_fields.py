"""dora-rs 1.1's descriptor rules and fields: ids, the reserved node id, restart fields,
top-level env, and dora fields dora_zmq does not implement."""

from __future__ import annotations

import pytest

from dora_zmq._errors import DescriptorErrors
from dora_zmq.descriptor import RestartSpec, parse_dataflow


def _errors(text: str) -> list[str]:
    with pytest.raises(DescriptorErrors) as info:
        parse_dataflow(text, check_paths=False)
    return [e.format() for e in info.value.errors]


@pytest.mark.parametrize("node_id", ["my node", "a:b", "café"])
def test_node_ids_use_dora_characters(node_id: str) -> None:
    (err,) = _errors(f"nodes:\n  - id: {node_id}\n    path: dynamic\n")
    assert f"node id '{node_id}' contains" in err and "letters, digits" in err


def test_output_and_input_ids_too() -> None:
    errs = _errors(
        "nodes:\n  - id: n\n    path: dynamic\n    outputs: [my out]\n"
        "    inputs:\n      'in put': dora/timer/millis/5\n"
    )
    assert any("output id 'my out' contains ' '" in e for e in errs), errs
    assert any("input id 'in put' contains ' '" in e for e in errs), errs


def test_dora_is_a_reserved_node_id() -> None:
    (err,) = _errors("nodes:\n  - id: dora\n    path: dynamic\n    outputs: [timer]\n")
    assert "node id 'dora' is reserved" in err


def test_a_node_that_is_not_a_mapping_is_named() -> None:
    (err,) = _errors("nodes:\n  - camera.py\n")
    assert "each node must be a mapping, got 'camera.py'" in err


def test_operator_errors_name_the_operator() -> None:
    errs = _errors(
        "nodes:\n  - id: rt\n    operators:\n      - id: detect\n        python: d.py\n        colour: red\n"
    )
    assert errs == [
        "line 6: node 'rt', field 'operators[detect].colour': unknown operator field 'colour' "
        "(hint: valid operator fields: build, description, id, inputs, name, outputs, python, send_stdout_as, "
        "shared-library, wasm)"
    ]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("nodes:\n  - id: n\n    path: dynamic\n    send_logs_as: logs\n", "node field 'send_logs_as'"),
        ("nodes:\n  - id: n\n    path: dynamic\n    git: https://example.org/x.git\n", "node field 'git'"),
        (
            "nodes:\n  - id: n\n    path: dynamic\n"
            "    inputs:\n      t: {source: dora/timer/millis/5, input_timeout: 1}\n",
            "input field 'input_timeout'",
        ),
        ("strict_types: true\nnodes:\n  - id: n\n    path: dynamic\n", "top-level field 'strict_types'"),
    ],
)
def test_dora_fields_not_implemented_say_so(text: str, field: str) -> None:
    (err,) = _errors(text)
    assert f"{field} is a dora-rs field that dora_zmq does not implement" in err
    assert "did you mean" not in err


def test_a_typo_still_gets_a_did_you_mean() -> None:
    (err,) = _errors("nodes:\n  - id: n\n    path: dynamic\n    outptus: [x]\n")
    assert "did you mean 'outputs'?" in err


def test_restart_fields() -> None:
    flow = parse_dataflow(
        "nodes:\n  - id: n\n    path: n.py\n    restart_policy: always\n    max_restarts: 3\n"
        "    restart_delay: 0.5\n    max_restart_delay: 4\n    restart_window: 60\n",
        check_paths=False,
    )
    assert flow.nodes[0].restart == RestartSpec("always", 3, 0.5, 4.0, 60.0)
    assert parse_dataflow("nodes:\n  - id: n\n    path: dynamic\n", check_paths=False).nodes[0].restart == RestartSpec()


def test_bad_restart_fields() -> None:
    errs = _errors(
        "nodes:\n  - id: n\n    path: n.py\n"
        "    restart_policy: sometimes\n    max_restarts: -1\n    restart_delay: soon\n"
    )
    assert any("unknown restart_policy 'sometimes'" in e for e in errs), errs
    assert any("max_restarts must be a whole number >= 0" in e for e in errs), errs
    assert any("restart_delay must be a number of seconds >= 0" in e for e in errs), errs


def test_top_level_env_is_under_every_node() -> None:
    flow = parse_dataflow(
        "env:\n  A: 1\n  B: top\nnodes:\n  - id: n\n    path: dynamic\n    env: {B: node}\n", check_paths=False
    )
    assert dict(flow.nodes[0].env) == {"A": "1", "B": "node"}


def test_no_restart_policy_on_dynamic_nodes() -> None:
    (err,) = _errors("nodes:\n  - id: n\n    path: dynamic\n    restart_policy: always\n")
    assert "a dynamic node is started by hand: no daemon restarts it" in err
