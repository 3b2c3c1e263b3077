"""Composition: membership, lifecycle, termination, errors, request_stop, reports."""

from __future__ import annotations

import _thread
import threading
from collections.abc import Callable

import pytest

from dora_zmq import DoraZmqError
from dora_zmq.streams import (
    Composition,
    CompositionError,
    FanInGizmo,
    FunctionGizmo,
    Gizmo,
    IteratorSourceGizmo,
    SinkGizmo,
    StreamData,
    StreamMeta,
    tag_timing,
)

pytestmark = pytest.mark.timeout(5)

Tracker = Callable[[Composition], Composition]


class HoldingSource(Gizmo):
    """Sends ``count`` items (or counts up forever), then holds until the composition stops.

    It holds by reading an input nobody feeds, so only ``request_stop()`` ends it. ``reached``
    is set just before item number ``mark`` is sent, ``sent`` once all ``count`` items are.
    """

    def __init__(self, count: int | None = None, mark: int = -1) -> None:
        super().__init__([(0, False)])
        self.count = count
        self.mark = mark
        self.reached = threading.Event()
        self.sent = threading.Event()

    def run(self) -> None:
        i = 0
        while not self._abort and (self.count is None or i < self.count):
            if i == self.mark:
                self.reached.set()
            self.send_result(StreamData(i))
            i += 1
        self.sent.set()
        for _ in self.get_input(0):
            pass


class Stalled(Gizmo):
    """Never reads input 0: blocks on input 1, which nobody feeds, until the composition stops."""

    def __init__(self, maxsize: int = 1) -> None:
        super().__init__([(maxsize, False), (0, False)])
        self.waiting = threading.Event()

    def run(self) -> None:
        self.waiting.set()
        for _ in self.get_input(1):
            pass


class Failing(Gizmo):
    """Raises from run(); ``raising`` is set just before."""

    def __init__(self) -> None:
        super().__init__()
        self.raising = threading.Event()

    def run(self) -> None:
        self.raising.set()
        raise ValueError("sensor on fire")


def run_with_timeout(action: Callable[[], None], timeout: float = 3.0) -> None:
    """Run ``action`` in a helper thread and fail if it does not finish in time."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            action()
        except BaseException as exc:  # handed back to the test thread
            errors.append(exc)

    helper = threading.Thread(target=target)
    helper.start()
    helper.join(timeout)
    assert not helper.is_alive(), f"{action} did not finish within {timeout} s"
    if errors:
        raise errors[0]


class TestMembership:
    def test_constructor_adds_connected_gizmos(self) -> None:
        src, mid, sink = IteratorSourceGizmo([]), FunctionGizmo(str), SinkGizmo()
        src >> mid >> sink
        comp = Composition(mid)
        assert set(comp.gizmos) == {src, mid, sink}
        assert comp.gizmos[0] is mid
        assert all(g.composition is comp for g in comp.gizmos)

    def test_constructor_takes_iterables(self) -> None:
        a, b = IteratorSourceGizmo([]), SinkGizmo()
        c = SinkGizmo()
        a >> b
        comp = Composition([a], (g for g in [c]))
        assert set(comp.gizmos) == {a, b, c}

    @pytest.mark.parametrize("bad", [3, "gizmo", [1, 2]])
    def test_constructor_rejects_other_types(self, bad: object) -> None:
        with pytest.raises(TypeError):
            Composition(bad)  # type: ignore[arg-type]

    def test_add_and_call_return_the_gizmo(self) -> None:
        comp = Composition()
        src = comp.add(IteratorSourceGizmo([1]))
        sink = comp(SinkGizmo(collect=True))
        comp.add(src)
        assert comp.gizmos == [src, sink]
        src >> sink
        with comp:
            pass
        assert [i.data for i in sink.results] == [1]

    def test_add_rejects_non_gizmo(self) -> None:
        with pytest.raises(TypeError):
            Composition().add("x")  # type: ignore[type-var]

    def test_gizmos_connected_after_add_join_at_start(self) -> None:
        src = IteratorSourceGizmo([1, 2])
        comp = Composition(src)
        sink = SinkGizmo(collect=True)
        src >> sink
        with comp:
            pass
        assert sink in comp.gizmos
        assert [i.data for i in sink.results] == [1, 2]


class TestLifecycle:
    def test_chain_of_four_terminates_by_poison_pill(self, track: Tracker) -> None:
        src = IteratorSourceGizmo(range(10))
        double = FunctionGizmo(lambda x: x * 2, "double", [(2, False)])
        inc = FunctionGizmo(lambda x: x + 1, "inc", [(1, False)])
        sink = SinkGizmo(1, collect=True)
        comp = track(Composition(src >> double >> inc >> sink))
        comp.start(wait=False)
        comp.wait()
        assert [i.data for i in sink.results] == [x * 2 + 1 for x in range(10)]
        assert double.result_cnt == 10 and inc.result_cnt == 10

    def test_threads_are_named_non_daemon_and_joined(self, track: Tracker) -> None:
        src = HoldingSource(count=1)
        comp = track(Composition(src))
        comp.start(wait=False)
        gizmo_threads = [t for t in threading.enumerate() if t.name == "gizmo-HoldingSource"]
        assert len(gizmo_threads) == 1 and not gizmo_threads[0].daemon
        comp.stop()
        assert not gizmo_threads[0].is_alive()

    def test_wait_before_start_returns(self) -> None:
        Composition(SinkGizmo()).wait()

    def test_wait_twice_returns(self, track: Tracker) -> None:
        comp = track(Composition(IteratorSourceGizmo([])))
        comp.start(wait=False)
        comp.wait()
        comp.wait()

    def test_start_waits_for_the_end_by_default(self) -> None:
        src, sink = IteratorSourceGizmo(range(5)), SinkGizmo()
        Composition(src >> sink).start()
        assert [item.data for item in sink()] == list(range(5))
        assert not any(t.name.startswith("gizmo-") for t in threading.enumerate())

    def test_ctrl_c_while_start_waits_stops_the_gizmos(self) -> None:
        class Interrupter(Gizmo):
            def run(self) -> None:
                _thread.interrupt_main()  # as if Ctrl-C was pressed while start() waits

        holder = HoldingSource()  # runs until stopped
        with pytest.raises(KeyboardInterrupt):
            Composition(holder, Interrupter()).start()
        assert holder._abort
        assert not any(t.name.startswith("gizmo-") for t in threading.enumerate())

    def test_start_raises_gizmo_errors_and_wait_raises_them_again(self) -> None:
        comp = Composition(Failing())
        with pytest.raises(CompositionError, match="sensor on fire"):
            comp.start()
        with pytest.raises(CompositionError, match="sensor on fire"):
            comp.wait()
        with pytest.raises(CompositionError, match="sensor on fire"):
            comp.stop()

    def test_start_twice_raises(self, track: Tracker) -> None:
        comp = track(Composition(HoldingSource(count=0)))
        comp.start(wait=False)
        with pytest.raises(CompositionError, match="already started"):
            comp.start(wait=False)
        comp.stop()

    def test_add_while_running_raises(self) -> None:
        comp = Composition(HoldingSource(count=0))
        with comp:
            with pytest.raises(CompositionError, match="running"):
                comp.add(SinkGizmo())
            comp.request_stop()

    def test_stop_is_safe_when_not_running(self) -> None:
        comp = Composition(SinkGizmo())
        comp.stop()

    def test_composition_can_run_again(self) -> None:
        src = IteratorSourceGizmo([1, 2, 3])
        sink = SinkGizmo(collect=True)
        comp = Composition(src >> sink)
        for _ in range(2):
            with comp:
                pass
            assert [i.data for i in sink.results] == [1, 2, 3]

    def test_empty_composition(self) -> None:
        with Composition() as comp:
            pass
        assert comp.gizmos == []

    def test_enter_returns_self_and_tolerates_started(self, track: Tracker) -> None:
        comp = track(Composition(IteratorSourceGizmo([])))
        comp.start(wait=False)
        with comp as entered:
            assert entered is comp

    def test_exit_after_wait_in_body(self) -> None:
        with Composition(IteratorSourceGizmo([])) as comp:
            comp.wait()

    def test_gizmo_can_stop_its_own_composition(self) -> None:
        class Stopper(Gizmo):
            def run(self) -> None:
                assert self.composition is not None
                self.composition.stop()  # joins the others, not itself

        holder = HoldingSource()  # runs until stopped
        Composition(holder, Stopper()).start()
        assert not any(t.name.startswith("gizmo-") for t in threading.enumerate())

    def test_two_gizmos_waiting_for_each_other_do_not_deadlock(self) -> None:
        class SelfWaiter(Gizmo):
            def run(self) -> None:
                assert self.composition is not None
                self.composition.wait()

        Composition(SelfWaiter(), SelfWaiter()).start()


class TestFanOutAndFanIn:
    def test_fan_out_every_consumer_gets_every_item(self) -> None:
        src = IteratorSourceGizmo(range(20))
        sinks = [SinkGizmo(2, collect=True) for _ in range(3)]
        for sink in sinks:
            src >> sink
        with Composition(src):
            pass
        for sink in sinks:
            assert [i.data for i in sink.results] == list(range(20))

    def test_multi_input_gizmo(self) -> None:
        left = IteratorSourceGizmo(StreamData(i, _meta(i, "L")) for i in range(5))
        right = IteratorSourceGizmo(StreamData(i * 10, _meta(i, "R")) for i in range(5))
        fan_in = FanInGizmo(2, maxsize=1)
        sink = SinkGizmo(collect=True)
        left >> fan_in[0]
        right >> fan_in[1]
        with Composition(fan_in >> sink):
            pass
        assert [i.data for i in sink.results] == [[i, i * 10] for i in range(5)]
        merged = [(entry, tags) for entry, tags in sink.results[2].meta if tags != [tag_timing]]
        assert merged == [(2, ["L"]), (2, ["R"])]

    def test_fan_in_ending_early_runs_again(self) -> None:
        short, long = IteratorSourceGizmo(range(1)), IteratorSourceGizmo(range(50))
        fan_in = FanInGizmo(2, maxsize=1)
        sink = SinkGizmo(collect=True)
        short >> fan_in[0]
        long >> fan_in[1]
        comp = Composition(fan_in >> sink)
        for _ in range(2):  # the inputs abandoned by the first run are read again
            with comp:
                pass
            assert [i.data for i in sink.results] == [[0, 0]]


def _meta(value: int, tag: str) -> StreamMeta:
    """Build the meta of a test item (via StreamData, so its default meta is exercised)."""
    item = StreamData(None)
    item.append_meta(value, tag)
    return item.meta


class TestErrors:
    def test_wait_raises_naming_failing_gizmo_with_traceback(self, track: Tracker) -> None:
        boom = Failing()
        boom.name = "boom"
        runner = HoldingSource()  # counts forever: only the error can stop it
        sink = SinkGizmo(2)
        runner >> sink
        comp = track(Composition(boom, runner))
        comp.start(wait=False)
        with pytest.raises(CompositionError) as info:
            run_with_timeout(comp.wait)
        text = str(info.value)
        assert "Error detected during execution of boom:\n  ValueError: sensor on fire" in text
        assert "Traceback (most recent call last)" in text and "in run" in text
        assert [f.gizmo for f in info.value.failures] == ["boom"]
        assert isinstance(info.value.failures[0].error, ValueError)
        assert isinstance(boom.error, ValueError)
        assert runner._abort and sink._abort
        assert isinstance(info.value, DoraZmqError)

    def test_error_in_middle_of_chain(self, track: Tracker) -> None:
        def fragile(x: int) -> int:
            if x == 3:
                raise KeyError("bad item")
            return x

        src = HoldingSource()
        mid = FunctionGizmo(fragile, "fragile", [(1, False)])
        sink = SinkGizmo(1, collect=True)
        comp = track(Composition(src >> mid >> sink))
        comp.start(wait=False)
        with pytest.raises(CompositionError, match="execution of fragile:\n  KeyError"):
            run_with_timeout(comp.wait)

    def test_with_block_raises_gizmo_errors(self) -> None:
        boom = Failing()
        boom.name = "boom"
        with pytest.raises(CompositionError, match="'boom'"), Composition(boom, HoldingSource()):
            pass

    def test_several_failures_all_reported(self) -> None:
        first, second = Failing(), Failing()
        first.name, second.name = "first", "second"
        with pytest.raises(CompositionError) as info, Composition(first, second):
            pass
        assert sorted(f.gizmo for f in info.value.failures) == ["first", "second"]
        assert "2 gizmo(s) failed" in str(info.value)

    def test_body_exception_stops_gizmos_and_propagates(self) -> None:
        src = HoldingSource()
        with pytest.raises(RuntimeError, match="user code"), Composition(src >> SinkGizmo()):
            raise RuntimeError("user code")
        assert src._abort

    def test_body_exception_gets_gizmo_failures_as_note(self, caplog: pytest.LogCaptureFixture) -> None:
        boom = Failing()
        boom.name = "boom"
        with pytest.raises(RuntimeError, match="user code") as info, Composition(boom):
            assert boom.raising.wait(timeout=2)
            raise RuntimeError("user code")
        assert any("execution of boom" in note for note in getattr(info.value, "__notes__", []))
        assert any("while handling RuntimeError" in r.getMessage() for r in caplog.records)


class TestRequestStop:
    def test_unblocks_gizmo_blocked_on_get(self, track: Tracker) -> None:
        stalled = Stalled()
        comp = track(Composition(stalled))
        comp.start(wait=False)
        assert stalled.waiting.wait(timeout=2)
        comp.request_stop()
        run_with_timeout(comp.wait)

    def test_unblocks_gizmo_blocked_on_put_into_full_stream(self, track: Tracker) -> None:
        src = HoldingSource(mark=1)  # item 0 fills the stream, item 1 blocks
        stalled = Stalled(maxsize=1)
        src >> stalled
        comp = track(Composition(src))
        comp.start(wait=False)
        assert src.reached.wait(timeout=2)
        assert comp.get_current_queue_sizes()  # a snapshot works while blocked
        run_with_timeout(comp.stop)
        assert src.result_cnt == 2

    def test_request_stop_is_idempotent_and_nonblocking(self, track: Tracker) -> None:
        src = HoldingSource(mark=2)  # items 0 and 1 fill the stream, item 2 blocks
        stalled = Stalled(maxsize=2)
        src >> stalled
        comp = track(Composition(src))
        comp.start(wait=False)
        assert src.reached.wait(timeout=2)
        run_with_timeout(comp.request_stop)
        run_with_timeout(comp.request_stop)
        run_with_timeout(comp.wait)


class TestReports:
    def test_get_bottlenecks_after_drops(self, track: Tracker) -> None:
        src = HoldingSource(count=5)
        stalled = Stalled(maxsize=1)
        stalled.name = "slow"
        src >> stalled
        comp = track(Composition(src))
        comp.start(wait=False, detect_bottlenecks=True)
        assert src.sent.wait(timeout=2)  # detection made the full stream drop, not block
        assert comp.get_bottlenecks() == [{"slow": 4}]
        comp.stop()
        assert comp.get_bottlenecks() == [{"slow": 4}]
        assert stalled.get_input(0).allow_drop is False  # restored after the run

    def test_no_bottlenecks_without_drops(self) -> None:
        src = IteratorSourceGizmo(range(5))
        with Composition(src >> SinkGizmo()) as comp:
            pass
        assert comp.get_bottlenecks() == []

    def test_get_current_queue_sizes(self, track: Tracker) -> None:
        src = HoldingSource(count=3)
        stalled = Stalled(maxsize=0)
        src >> stalled
        comp = track(Composition(src))
        comp.start(wait=False)
        assert src.sent.wait(timeout=2)
        assert stalled.waiting.wait(timeout=2)
        sizes = comp.get_current_queue_sizes()
        comp.stop()
        assert sizes == [{"HoldingSource": [3, 0]}, {"Stalled": [0, 3, 0]}]
