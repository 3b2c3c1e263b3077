"""`dora-zmq new` creates starter files that run as they are."""

from __future__ import annotations

from pathlib import Path

import yaml


def test_new_dataflow_runs(dora, tmp_path: Path) -> None:
    assert dora("new", "demo", cwd=tmp_path).wait(20).returncode == 0
    result = dora("run", "demo/dataflow.yml", cwd=tmp_path).wait(40)
    assert result.returncode == 0, result.output
    assert "numbers: [9, 81]" in result.stdout
    again = dora("new", "demo", cwd=tmp_path).wait(20)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_new_node_and_operator_templates_run_in_a_dataflow(dora, tmp_path: Path) -> None:
    """A project made only of `dora-zmq new` files: the dataflow, plus a node and an operator.

    source -> op (operator template) -> relay (node template) -> sink, with the templates'
    commented-out ``send_output`` lines switched on, as a user would: the values reach the sink
    only if both templates run as written.
    """
    assert dora("new", "demo", cwd=tmp_path).wait(20).returncode == 0
    project = tmp_path / "demo"
    for name, kind in (("relay", "node"), ("double", "operator")):
        made = dora("new", name, "--kind", kind, cwd=project).wait(20)
        assert made.returncode == 0, made.output
        script = project / f"{name}.py"
        text = script.read_text()
        assert "# node.send_output(" in text or "# send_output(" in text, text
        switched_on = text.replace("# node.send_output(", "node.send_output(").replace("# send_output(", "send_output(")
        script.write_text(switched_on)
    flow = yaml.safe_load((project / "dataflow.yml").read_text())
    flow["nodes"] += [
        {
            "id": "op",
            "operator": {"python": "double.py", "inputs": {"numbers": "source/numbers"}, "outputs": ["my_output"]},
        },
        {"id": "relay", "path": "relay.py", "inputs": {"from_op": "op/my_output"}, "outputs": ["my_output"]},
    ]
    sink = next(node for node in flow["nodes"] if node["id"] == "sink")
    sink["inputs"]["relayed"] = "relay/my_output"
    (project / "dataflow.yml").write_text(yaml.safe_dump(flow))

    result = dora("run", "demo/dataflow.yml", cwd=tmp_path).wait(60)
    assert result.returncode == 0, result.output
    lines = result.stdout.splitlines()
    for i in range(10):  # the source's ten arrays, [i, i*i], each through every hop
        assert f"relay from_op: [{i}, {i * i}]" in lines, result.output
        assert f"sink relayed: [{i}, {i * i}]" in lines, result.output
        assert f"sink numbers: [{i}, {i * i}]" in lines, result.output
    assert "relay input from_op closed" in lines, result.output
    assert "sink input relayed closed" in lines, result.output
