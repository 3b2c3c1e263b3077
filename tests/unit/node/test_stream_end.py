"""EndingUpstreams: an input whose end-of-stream marker was lost closes on the exit notice."""

from __future__ import annotations

import pytest

from dora_zmq.node import _stream_end
from dora_zmq.node._receiver import Route
from dora_zmq.node._stream_end import EndingUpstreams


class Inputs:
    def __init__(self, *ids: str) -> None:
        self.open = set(ids)
        self.closed: list[tuple[list[str], str | None, str]] = []

    def close(self, inputs: list[str], failed: str | None, source: str) -> None:
        self.closed.append((inputs, failed, source))
        self.open -= set(inputs)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(_stream_end.time, "monotonic", lambda: now[0])
    return now


def _ending(routes: dict[bytes, Route], inputs: Inputs) -> EndingUpstreams:
    return EndingUpstreams("dst", routes, lambda: frozenset(inputs.open), inputs.close)


def test_tail_that_never_comes_is_counted_lost_after_the_wait(clock: list[float]) -> None:
    route = Route("src", ["a", "b"], next_seq=58, output="n")  # 1..57 arrived
    inputs = Inputs("a", "b")
    ending = _ending({b"src/n\0": route}, inputs)
    ending.exited("src", {"n": 250}, None)
    assert inputs.closed == []  # it may still be on its way
    clock[0] += _stream_end.TAIL_WAIT_S - 0.01
    ending.check()
    assert inputs.closed == []
    clock[0] += 0.02
    ending.check()
    assert inputs.closed == [(["a", "b"], None, "src")]
    assert route.lost == 250 - 57
    assert not ending


def test_complete_tail_closes_at_once_and_counts_nothing() -> None:
    route = Route("src", ["a"], next_seq=251, output="n")
    inputs = Inputs("a")
    _ending({b"src/n\0": route}, inputs).exited("src", {"n": 250}, "boom")
    assert inputs.closed == [(["a"], "boom", "src")]
    assert route.lost == 0


def test_marker_in_band_first_leaves_nothing_to_do() -> None:
    route = Route("src", ["a"], next_seq=10, output="n")
    inputs = Inputs()  # the marker closed it already
    ending = _ending({b"src/n\0": route}, inputs)
    ending.exited("src", {"n": 250}, None)
    assert inputs.closed == [] and not ending and route.lost == 0


def test_messages_still_arriving_extend_the_wait(clock: list[float]) -> None:
    route = Route("src", ["a"], next_seq=1, output="n")
    inputs = Inputs("a")
    ending = _ending({b"src/n\0": route}, inputs)
    ending.exited("src", {"n": 3}, None)
    clock[0] += 0.75 * _stream_end.TAIL_WAIT_S
    route.next_seq = 3
    ending.progress("src")
    clock[0] += 0.5 * _stream_end.TAIL_WAIT_S
    ending.check()  # past the first wait, within the one since the last message: still waiting
    assert inputs.closed == []
    route.next_seq = 4
    ending.check()
    assert inputs.closed == [(["a"], None, "src")] and route.lost == 0
