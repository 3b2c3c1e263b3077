"""The benchmark's validation table: what validating received values costs per message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.timeout(60)
def test_validation_table_prints_every_layout() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / "validation.py"), "--sizes", "64,4096"],
        capture_output=True,
        text=True,
        timeout=50,
        check=True,
        env={"COLUMNS": "200", "PATH": ""},
    ).stdout
    assert "Validation on receive" in out
    for layout in ("uint8 (flat)", "int64 with nulls", "string", "list<int64>", "dictionary<string>"):
        assert out.count(f"│ {layout} ") == 2, out  # one row per size
    assert out.count("none (flat)") == 2, out  # flat values are not checked
