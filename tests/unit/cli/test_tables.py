"""Tables of the CLI at a narrow terminal."""

from __future__ import annotations

import io
import time

from rich.console import Console

from dora_zmq import _control as ctl
from dora_zmq.cli._views import dataflow_table

HEADERS = ("name", "id", "status", "age", "nodes", "failed", "dropped", "lost")


def test_list_table_headers_are_whole_at_80_columns() -> None:
    info = ctl.DataflowInfo(
        "0123456789abcdef",
        "object-detection-pipeline",
        "running",
        {f"node{i}": "running" for i in range(6)} | {"cam": "spawning"},
        [ctl.FailureRecord("detector")],
        {"detector/image": 1234, "plot/boxes": 7},
        time.time() - 4000,
        {"detector/image": 3},
    )
    buffer = io.StringIO()
    Console(file=buffer, width=80, color_system=None).print(dataflow_table([info]))
    text = buffer.getvalue()
    header = text.splitlines()[1]
    for name in HEADERS:
        assert f" {name} " in header, header  # was cut ("dropped (qu…")
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "1h06m" in text and "1234" in text
