"""A composition inside a node; StreamMeta appended in one node is found in the next."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import REPO


def test_stream_meta_crosses_nodes(dora, flow_dir: Path) -> None:
    for name in ("streams_pipeline", "object_detection"):
        shutil.copytree(REPO / "dataflows" / name, flow_dir / name)
    shutil.copy(REPO / "dataflows" / "streams_pipeline.yml", flow_dir)
    result = dora("run", str(flow_dir / "streams_pipeline.yml")).wait(60)
    assert result.returncode == 0, result.output
    lines = [line for line in result.stdout.splitlines() if "boxes from colour-blobs" in line]
    # every frame reached the display with the upstream node's "Resize" and "Inference" meta
    assert "display: 30 frames" in result.stdout
    assert len(lines) == 30
    assert all("3 boxes from colour-blobs, resized [320, 240]" in line for line in lines)
    assert "pipeline: done" in result.stdout
