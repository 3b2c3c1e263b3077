"""The quick-start dataflow runs to completion through the real CLI."""

from __future__ import annotations

from conftest import REPO


def test_quickstart_runs_to_completion(dora) -> None:
    p = dora("run", str(REPO / "dataflows" / "quickstart.yml"))
    result = p.wait(60)
    assert result.returncode == 0, result.output
    assert "sink: 20 batches, 160 values" in result.stdout
    assert "finished" in result.stderr
