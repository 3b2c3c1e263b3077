"""The recording folder without processes: writing, reading back, damage, and a full disk."""

from __future__ import annotations

import errno
import io
import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from dora_zmq.recording import Manifest, OutputRecord, Recording, RecordingError, RecordingWriter
from dora_zmq.recording import _writer

VALUES = [
    pa.array([1.5, None, 3.25]),
    pa.array([2.5]),
    pa.array(["a", "bé", None]),  # a type change: a second segment
    pa.array([[1, 2], [], None, [3]]),
    pa.array([{"x": 1, "y": "a"}, {"x": 2, "y": None}]),
    pa.array([b"\x00\x01", b""]),
    pa.array([], type=pa.int8()),
    pa.array(["a", "b", "a"]).dictionary_encode(),
    pa.array([1, 2, 3, 4, 5]).slice(2, 2),
]


def _manifest(*topics: str) -> Manifest:
    return Manifest(
        "flow",
        "id",
        "nodes: []\n",
        "/",
        "now",
        time.time_ns(),
        outputs=[OutputRecord(t, *t.split("/", 1)) for t in topics],
    )


def _write(folder: Path, values: list[pa.Array], topic: str = "cam/out") -> Manifest:
    writer = RecordingWriter(folder, _manifest(topic))
    for i, v in enumerate(values):
        writer.write(topic, v, {"i": i, "nested": {"l": [1, "x"]}}, i + 1, 1000 + i, 2000 + i)
    return writer.close({topic: 2}, {topic: 1})


def test_every_value_comes_back_as_written(tmp_path: Path) -> None:
    manifest = _write(tmp_path / "rec", VALUES)
    out = manifest.output("cam/out")
    assert out.messages == len(VALUES) and (out.dropped, out.lost, out.not_written) == (2, 1, 0)
    assert len(out.segments) == 8 and out.segments[0].messages == 2  # the two doubles share one file
    got = Recording.open(tmp_path / "rec").read_output("cam/out")
    assert [m.value.to_pylist() for m in got] == [v.to_pylist() for v in VALUES]
    assert [m.value.type for m in got] == [v.type for v in VALUES]
    assert [(m.seq, m.sent_ns, m.received_ns) for m in got] == [(i + 1, 1000 + i, 2000 + i) for i in range(len(VALUES))]
    assert got[0].metadata == {"i": 0, "nested": {"l": [1, "x"]}}


def test_outputs_merge_in_send_time_order(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path / "rec", _manifest("a/x", "b/y"))
    for t, topic in [(5, "a/x"), (1, "b/y"), (7, "b/y"), (9, "a/x"), (3, "b/y")]:
        writer.write(topic, pa.array([t]), {}, 1, t, t)
    writer.close({}, {})
    merged = [(m.topic, m.sent_ns) for m in Recording.open(tmp_path / "rec").messages()]
    # across outputs by send time; each output keeps its own order (a clock stepping back
    # puts b/y's 3 after its 7, never before)
    assert merged == [("b/y", 1), ("a/x", 5), ("b/y", 7), ("b/y", 3), ("a/x", 9)]


def test_a_folder_holding_a_recording_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "rec", VALUES[:1])
    with pytest.raises(RecordingError, match="holds a recording already"):
        RecordingWriter(tmp_path / "rec", _manifest("cam/out"))


def test_truncated_file_is_an_error_unless_allowed(tmp_path: Path) -> None:
    _write(tmp_path / "rec", [pa.array(range(100)) for _ in range(200)])
    path = tmp_path / "rec" / "cam%2Fout.0.arrow"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    rec = Recording.open(tmp_path / "rec")
    with pytest.raises(RecordingError, match="cut short or corrupt after 64 message"):
        rec.verify()
    assert 0 < rec.verify(allow_truncated=True)["cam/out"] < 200
    path.write_bytes(data[: len(data) - 8])  # only the end-of-stream marker gone: all messages readable
    assert rec.verify() == {"cam/out": 200}


def test_a_whole_batch_missing_is_noticed_against_the_manifest(tmp_path: Path) -> None:
    _write(tmp_path / "rec", [pa.array([i]) for i in range(100)])
    path = tmp_path / "rec" / "cam%2Fout.0.arrow"
    first = path.read_bytes()
    _write(tmp_path / "short", [pa.array([i]) for i in range(64)])
    path.write_bytes((tmp_path / "short" / "cam%2Fout.0.arrow").read_bytes())  # ends cleanly after 64
    assert first != path.read_bytes()
    with pytest.raises(RecordingError, match="holds 64 message.*the manifest lists 100"):
        Recording.open(tmp_path / "rec").verify()


@pytest.mark.parametrize("file_name", ["../../etc/passwd", "/etc/passwd", "..", ""])
def test_a_manifest_naming_files_outside_the_folder_is_refused(tmp_path: Path, file_name: str) -> None:
    _write(tmp_path / "rec", VALUES[:1])
    manifest = json.loads((tmp_path / "rec" / "manifest.json").read_text())
    manifest["outputs"][0]["segments"][0]["file"] = file_name
    (tmp_path / "rec" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RecordingError, match="malformed"):
        Recording.open(tmp_path / "rec")


def test_a_stream_of_another_output_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "rec", VALUES[:1])
    _write(tmp_path / "other", VALUES[:1], topic="cam/other")
    (tmp_path / "other" / "cam%2Fother.0.arrow").replace(tmp_path / "rec" / "cam%2Fout.0.arrow")
    with pytest.raises(RecordingError, match="holds output 'cam/other', not 'cam/out'"):
        Recording.open(tmp_path / "rec").verify()


class _FullDisk(io.FileIO):
    """A file that takes ``room`` bytes, then fails as a full disk does."""

    room = 0

    def write(self, data: Any) -> int:
        if _FullDisk.room < len(data):
            raise OSError(errno.ENOSPC, "No space left on device")
        _FullDisk.room -= len(data)
        return super().write(data)


def test_a_full_disk_is_counted_and_recording_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_writer, "open", lambda path, mode: _FullDisk(path, "xb"), raising=False)
    _FullDisk.room = 4000  # the schema and the first batch fit, the second does not
    writer = RecordingWriter(tmp_path / "rec", _manifest("cam/out"))
    for i in range(64 * 3):
        if i == 128:
            _FullDisk.room = 10**9  # room again: a new file takes the rest
        writer.write("cam/out", pa.array([i]), {}, i + 1, i, i)
    manifest = writer.close({}, {})
    out = manifest.output("cam/out")
    assert out.not_written == 64 and out.messages == 128
    assert [(s.messages, s.complete) for s in out.segments] == [(64, False), (64, True)]
    got = Recording.open(tmp_path / "rec").read_output("cam/out")
    assert [m.value[0].as_py() for m in got] == list(range(64)) + list(range(128, 192))
