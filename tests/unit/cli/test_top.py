"""``top``'s model and screen, driven with snapshots and read through rich's console capture."""

from __future__ import annotations

import io

from rich.console import Console

from dora_zmq import _control as ctl
from dora_zmq.cli._top import TopModel, _view, format_bytes


def _ticker(received: int, sent: int, age: float, status: str = "running", pid: int = 42) -> ctl.NodeStatsRecord:
    return ctl.NodeStatsRecord(
        "df1",
        "demo",
        "ticker",
        "",
        status,
        pid,
        12.5,
        85 * 2**20,
        1,
        {"tick": received},
        {"count": sent},
        {"tick": 1},
        {"tick": 3},
        {"tick": 0},
        age,
    )


def _screen(model: TopModel, width: int = 80) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None).print(_view(model, "tcp://127.0.0.1:53290"))
    return buffer.getvalue()


def test_rates_come_from_the_nodes_reports_not_the_refreshes() -> None:
    model = TopModel()
    model.update(ctl.NodeStatsList(100.0, [_ticker(1000, 990, 0.5)]))  # counters of t=99.5
    assert model.rate("df1", "ticker", "in:tick") is None  # one report: no rate yet
    model.update(ctl.NodeStatsList(101.0, [_ticker(1100, 1090, 0.5)]))  # t=100.5: +100 in 1 s
    assert model.rate("df1", "ticker", "in:tick") == 100.0 and model.rate("df1", "ticker", "out:count") == 100.0
    # A refresh between two reports (the same counters, older): the rate stays, not 0.
    model.update(ctl.NodeStatsList(101.9, [_ticker(1100, 1090, 1.4)]))
    assert model.rate("df1", "ticker", "in:tick") == 100.0
    # A report 2 s after the previous one, with 100 more: 50/s (not 100 per refresh).
    model.update(ctl.NodeStatsList(102.6, [_ticker(1200, 1190, 0.1)]))
    assert model.rate("df1", "ticker", "in:tick") == 50.0
    # A node reports only while its counters change: silent for long means idle.
    model.update(ctl.NodeStatsList(107.0, [_ticker(1200, 1190, 4.5)]))
    assert model.rate("df1", "ticker", "in:tick") == 0.0


def test_screen_fits_80_columns_with_whole_headers() -> None:
    model = TopModel()
    model.update(ctl.NodeStatsList(100.0, [_ticker(1000, 990, 0.2)]))
    model.update(ctl.NodeStatsList(101.0, [_ticker(1100, 1090, 0.2)]))
    text = _screen(model)
    lines = text.splitlines()
    assert (
        lines[0].startswith("dora-zmq top  tcp://127.0.0.1:53290")
        and "dataflow demo, 1 node " in lines[0]
        and "q quits" in lines[0]
    )
    assert lines[1].split() == [
        "node",
        "machine",
        "CPU%",
        "RSS",
        "restarts",
        "port",
        "msg/s",
        "queue",
        "dropped",
        "lost",
    ]
    assert lines[3].split() == ["ticker", "-", "12.5", "85.0", "MiB", "1", "←", "tick", "100", "1", "3", "0"]
    assert lines[4].split() == ["→", "count", "100"]
    assert max(len(line) for line in lines) <= 80


def test_ended_nodes_and_several_dataflows() -> None:
    model = TopModel()
    other = ctl.NodeStatsRecord(
        "df2", "other", "cam", "arm", "running", 7, 0.0, 2048, 0, {}, {"image": 5}, {}, {}, {}, -1.0
    )
    model.update(ctl.NodeStatsList(100.0, [_ticker(10, 10, 0.2, status="exited", pid=0), other]))
    text = _screen(model, width=120)
    assert "2 dataflows" in text and "dataflow" in text.splitlines()[1]
    assert "ticker (exited)" in text
    assert "…" in text  # cam's rate before two reports
    assert "2 KiB" in text


def test_format_bytes() -> None:
    assert [format_bytes(n) for n in (512, 2048, 85 * 2**20, 3 * 2**30)] == ["512 B", "2 KiB", "85.0 MiB", "3.0 GiB"]
