"""Every YAML file of the descriptor corpus: valid ones parse, invalid ones fail as their comment says."""

from __future__ import annotations

from pathlib import Path

import pytest

from dora_zmq import DescriptorErrors
from dora_zmq.descriptor import Dataflow, load_dataflow

CORPUS = Path(__file__).resolve().parents[2] / "data" / "descriptors"
VALID = sorted((CORPUS / "valid").glob("*.yml"))
INVALID = sorted((CORPUS / "invalid").glob("*.yml"))


def _expectation(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect:"), f"{path.name} must start with '# expect: <text>'"
    return first.split("# expect:", 1)[1].strip()


def test_corpus_is_not_empty() -> None:
    assert len(VALID) >= 10
    assert len(INVALID) >= 20


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_descriptor_parses(path: Path) -> None:
    flow = load_dataflow(path)
    assert isinstance(flow, Dataflow)
    assert flow.nodes
    assert flow.path == path
    assert flow.working_dir == path.parent


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_descriptor_fails_with_expected_message(path: Path) -> None:
    expected = _expectation(path)
    with pytest.raises(DescriptorErrors) as info:
        load_dataflow(path)
    message = str(info.value)
    assert expected in message
    assert path.name in message
    assert all(err.hint for err in info.value.errors), message
