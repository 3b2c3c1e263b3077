"""How the daemon packs its nodes' output lines for the coordinator (daemon/_logs.py log_messages)."""

from __future__ import annotations

from dora_zmq.daemon._logs import log_messages


def test_lines_are_grouped_per_stream_in_order() -> None:
    lines = [("df", "a", "stdout", "1"), ("df", "b", "stderr", "x"), ("df", "a", "stdout", "2")]
    got = [(m.node, m.stream, m.lines) for m in log_messages(lines)]
    assert got == [("a", "stdout", ["1", "2"]), ("b", "stderr", ["x"])]


def test_a_chatty_stream_goes_in_several_messages_each_under_the_bound() -> None:
    lines = [("df", "a", "stdout", f"{i:09d}") for i in range(100)]  # 9 characters + 8 overhead each
    msgs = list(log_messages(lines, max_bytes=100))
    assert [line for m in msgs for line in m.lines] == [line for *_, line in lines]
    assert len(msgs) > 10
    assert all(sum(len(line) + 8 for line in m.lines) <= 100 + 8 for m in msgs)


def test_a_line_longer_than_the_bound_still_goes_alone() -> None:
    msgs = list(log_messages([("df", "a", "stdout", "x" * 50), ("df", "a", "stdout", "y")], max_bytes=10))
    assert [m.lines for m in msgs] == [["x" * 50], ["y"]]


def test_no_lines_no_messages() -> None:
    assert list(log_messages([])) == []
