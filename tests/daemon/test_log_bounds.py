"""What a node prints is bounded: long lines cut, log files rotated, forwarding capped with a note."""

from __future__ import annotations

import os
import queue
from pathlib import Path

import pytest

from dora_zmq.daemon import _logs

pytestmark = pytest.mark.timeout(30)


def _capture(tmp_path: Path, stdout: bytes) -> tuple[_logs.LogCapture, "queue.Queue[tuple[str, str, str, str]]"]:
    sink: queue.Queue[tuple[str, str, str, str]] = queue.Queue()
    capture = _logs.LogCapture("df", "chatty", tmp_path / "log_chatty.txt", sink)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    capture.start(os.fdopen(out_r, "rb"), os.fdopen(err_r, "rb"))
    with os.fdopen(out_w, "wb") as w:
        w.write(stdout)
    os.close(err_w)
    capture.join(10)
    return capture, sink


def test_a_line_without_end_is_read_in_pieces(tmp_path: Path) -> None:
    _, sink = _capture(tmp_path, b"x" * (3 * _logs.LINE_MAX + 5))
    lines = [item[3] for item in list(sink.queue)]
    assert [len(line) for line in lines] == [_logs.LINE_MAX] * 3 + [5]


def test_the_log_file_rotates_and_forwarding_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_logs, "FILE_MAX", 10_000)
    monkeypatch.setattr(_logs, "PENDING_MAX", 50)
    _, sink = _capture(tmp_path, b"".join(b"line %04d\n" % i for i in range(2000)))  # 20 kB
    current, previous = tmp_path / "log_chatty.txt", tmp_path / "log_chatty.txt.1"
    assert current.stat().st_size <= 10_000 and previous.stat().st_size <= 10_000
    assert current.read_text().splitlines()[-1] == "line 1999"  # the newest lines are kept
    forwarded = [item[3] for item in list(sink.queue)]
    assert len(forwarded) == 50  # the daemon's loop did not drain: the rest stay in the file only
