"""Descriptors built to exhaust the parser: aliases that expand exponentially ("billion laughs")
and nesting deeper than the stack. Before the budget, a 250-byte file took seconds and a
700-byte one hours (blocking the coordinator, which parses every ``start``); nesting raised
RecursionError. Now both are descriptor errors naming the file and line, found in one linear
pass over the YAML events.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dora_zmq import DescriptorErrors
from dora_zmq.descriptor import parse_dataflow
from dora_zmq.testing import run_cli

pytestmark = pytest.mark.timeout(30)

CORPUS = Path(__file__).resolve().parents[1] / "data" / "descriptors" / "invalid"


def _laughs(levels: int) -> str:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    lines.append(f"nodes: [*l{levels - 1}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [6, 9, 12])
def test_alias_expansion_is_budgeted(levels: int) -> None:
    text = _laughs(levels)
    start = time.perf_counter()
    with pytest.raises(DescriptorErrors) as info:
        parse_dataflow(text, path=Path("laughs.yml"))
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"{len(text)} bytes took {elapsed:.2f} s"
    message = str(info.value)
    assert "laughs.yml:" in message and "expands to more than" in message, message


def test_deep_nesting_is_a_descriptor_error() -> None:
    with pytest.raises(DescriptorErrors, match=r"deep.yml:2: the YAML nests more than"):
        parse_dataflow("nodes:\n  - " + "[" * 50_000 + "]" * 50_000 + "\n", path=Path("deep.yml"))


def test_a_dataflow_with_a_few_aliases_still_parses() -> None:
    flow = parse_dataflow(
        "nodes:\n"
        "  - {id: a, path: dynamic, env: &env {A: '1', B: '2'}, outputs: [x]}\n"
        "  - {id: b, path: dynamic, env: *env, inputs: {x: a/x}}\n"
    )
    assert [n.env for n in flow.nodes] == [{"A": "1", "B": "2"}] * 2


def test_check_on_a_billion_laughs_file_fails_fast_and_clearly() -> None:
    start = time.monotonic()
    result = run_cli(["check", str(CORPUS / "billion_laughs.yml")], timeout=20)
    elapsed = time.monotonic() - start
    assert result.returncode == 1, result.output
    assert "billion_laughs.yml:7: the YAML expands to more than 500,000 values" in result.output
    assert "Traceback" not in result.output
    assert elapsed < 10, f"check took {elapsed:.1f} s"  # the process start included (a busy CI)
