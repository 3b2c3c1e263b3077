"""The descriptor package's public surface and its house-rule limits."""

from __future__ import annotations

import ast
from pathlib import Path

import dora_zmq.descriptor as descriptor

PACKAGE = Path(descriptor.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))


def test_public_names() -> None:
    assert sorted(descriptor.__all__) == sorted(
        [
            "load_dataflow",
            "parse_dataflow",
            "find_program",
            "Dataflow",
            "NodeSpec",
            "NodeKind",
            "OperatorSpec",
            "RestartSpec",
            "InputSpec",
            "OutputRef",
            "TimerSpec",
            "SINGLE_OPERATOR_ID",
        ]
    )
    assert descriptor.SINGLE_OPERATOR_ID == "op"
    for name in descriptor.__all__:
        assert hasattr(descriptor, name)


def _imports(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_zmq_subprocess_or_print() -> None:
    for module in MODULES:
        source = module.read_text(encoding="utf-8")
        tree = ast.parse(source)
        assert not _imports(tree) & {"zmq", "subprocess"}, module.name
        calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert "print" not in calls, module.name


def test_module_shape() -> None:
    for module in MODULES:
        source = module.read_text(encoding="utf-8")
        tree = ast.parse(source)
        assert len(source.splitlines()) < 600, module.name
        assert ast.get_docstring(tree), module.name
        assert "from __future__ import annotations" in source, module.name
        assert "__all__" in source, module.name
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                assert length < 60, f"{module.name}:{node.name} is {length} lines"
