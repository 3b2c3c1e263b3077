"""``dora-zmq export-mcap``: a recording read back with the ``mcap`` package's own reader."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pyarrow as pa
import pytest

from dora_zmq.recording import Manifest, OutputRecord, RecordingWriter

mcap_reader = pytest.importorskip(
    "mcap.reader", reason="the optional `mcap` package is not installed (pip install 'dora_zmq[mcap]')"
)


def test_export_mcap_keeps_topics_times_metadata_and_values(dora, tmp_path: Path) -> None:
    topics = ("camera/image", "detector/op/bbox")
    manifest = Manifest(
        "flow",
        "id",
        "nodes: []\n",
        "/",
        "2026-01-01T00:00:00+00:00",
        time.time_ns(),
        outputs=[OutputRecord(t, *t.split("/", 1)) for t in topics],
    )
    writer = RecordingWriter(tmp_path / "rec", manifest)
    writer.write("camera/image", pa.array(b"\x00\xffabc"), {"width": 2}, 1, 1_000, 1_500)
    writer.write("detector/op/bbox", pa.array([{"x": 1.5, "label": "cup"}]), {"score": [0.9]}, 1, 2_000, 2_600)
    writer.write("camera/image", pa.array([b"raw"]), {"width": 3}, 2, 3_000, 3_100)
    writer.close({}, {})

    result = dora("export-mcap", str(tmp_path / "rec"), str(tmp_path / "out.mcap")).wait(30)
    assert result.returncode == 0, result.output
    assert "wrote 3 messages" in result.stdout

    with open(tmp_path / "out.mcap", "rb") as f:
        reader = mcap_reader.make_reader(f)
        got = [
            (ch.topic, m.publish_time, m.log_time, m.sequence, json.loads(m.data))
            for _, ch, m in reader.iter_messages(log_time_order=False)
        ]
        meta = {r.name: r.metadata for r in reader.iter_metadata()}
    assert got == [
        ("/camera/image", 1_000, 1_500, 1, {"seq": 1, "metadata": {"width": 2}, "value": [0, 255, 97, 98, 99]}),
        (
            "/detector/op/bbox",
            2_000,
            2_600,
            1,
            {"seq": 1, "metadata": {"score": [0.9]}, "value": [{"x": 1.5, "label": "cup"}]},
        ),
        (
            "/camera/image",
            3_000,
            3_100,
            2,
            {"seq": 2, "metadata": {"width": 3}, "value": [base64.b64encode(b"raw").decode()]},
        ),
    ]
    assert meta["dora_zmq.dataflow"]["name"] == "flow"


def test_export_of_a_damaged_recording_is_a_clear_error(dora, tmp_path: Path) -> None:
    result = dora("export-mcap", str(tmp_path / "missing"), str(tmp_path / "out.mcap")).wait(30)
    assert result.returncode == 1 and "does not exist" in result.stderr and "Traceback" not in result.output
