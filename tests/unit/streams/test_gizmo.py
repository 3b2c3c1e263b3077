"""Gizmo: inputs, connections (connect_to, >>, [i]), get_connected, send_result, abort."""

from __future__ import annotations

import threading

import pytest

from dora_zmq import DoraZmqError
from dora_zmq.streams import (
    Composition,
    CompositionError,
    Gizmo,
    GizmoInputError,
    SinkGizmo,
    Stream,
    StreamConfigError,
    StreamData,
    empty_run,
    get_timing_info,
    tag_timing,
)

pytestmark = pytest.mark.timeout(5)


class Block(Gizmo):
    """A gizmo with configurable inputs whose run() does nothing (these tests run no threads)."""

    def __init__(self, n_inputs: int = 1, maxsize: int = 0, allow_drop: bool = False) -> None:
        super().__init__([(maxsize, allow_drop)] * n_inputs)

    def run(self) -> None:
        return None


class Plain(Gizmo):
    """A gizmo taking the base constructor's arguments as they are."""

    def run(self) -> None:
        return None


class TestConstruction:
    def test_gizmo_with_default_run_gets_no_thread(self) -> None:
        idle = Gizmo()
        sink = SinkGizmo(collect=True)
        idle >> sink
        comp = Composition(idle)
        comp.start(wait=False)
        try:
            assert sorted(t.name for t in threading.enumerate() if t.name.startswith("gizmo-")) in (
                ["gizmo-SinkGizmo"],
                [],
            )
            idle.send_result(StreamData(1))  # driven from outside, like DeGirum's empty-run gizmos
            idle.send_result(None)
        finally:
            comp.wait()
        assert [item.data for item in sink.results] == [1]

    def test_no_inputs_by_default(self) -> None:
        assert Plain().get_inputs() == []

    def test_input_streams_follow_sizes(self) -> None:
        gizmo = Plain([(0, False), (3, True), (2,)])
        first, second, third = gizmo.get_inputs()
        assert (first.maxsize, first.allow_drop) == (0, False)
        assert (second.maxsize, second.allow_drop) == (3, True)
        assert (third.maxsize, third.allow_drop) == (2, False)

    @pytest.mark.parametrize("spec", [3, (), (1, True, 2), ("big", False), (-1, False)])
    def test_bad_input_spec_rejected(self, spec: object) -> None:
        with pytest.raises(StreamConfigError):
            Plain([spec])  # type: ignore[list-item]

    def test_name_defaults_to_class_name_and_is_settable(self) -> None:
        gizmo = Block()
        assert gizmo.name == "Block"
        gizmo.name = "camera"
        assert gizmo.name == "camera"
        assert "camera" in repr(gizmo)

    def test_initial_state(self) -> None:
        gizmo = Block()
        assert gizmo._abort is False
        assert gizmo.result_cnt == 0
        assert gizmo.composition is None
        assert gizmo.error is None

    def test_abort_sets_and_clears_flag(self) -> None:
        gizmo = Block()
        gizmo.abort()
        assert gizmo._abort is True
        gizmo.abort(False)
        assert gizmo._abort is False


class TestInputs:
    def test_get_input_by_index(self) -> None:
        gizmo = Block(n_inputs=2)
        assert gizmo.get_input(1) is gizmo.get_inputs()[1]

    @pytest.mark.parametrize("index", [2, -1, 10])
    def test_missing_input_names_index_and_gizmo(self, index: int) -> None:
        gizmo = Block(n_inputs=2)
        gizmo.name = "resizer"
        with pytest.raises(GizmoInputError, match=rf"gizmo 'resizer' has no input {index}"):
            gizmo.get_input(index)

    def test_input_error_is_index_error_and_dora_error(self) -> None:
        with pytest.raises(IndexError):
            Block(n_inputs=0).get_input(0)
        with pytest.raises(DoraZmqError):
            Block(n_inputs=0).get_input(0)

    def test_get_inputs_returns_a_copy(self) -> None:
        gizmo = Block()
        gizmo.get_inputs().clear()
        assert len(gizmo.get_inputs()) == 1


class TestConnections:
    def test_connect_to_by_index_returns_self(self) -> None:
        src, dst = Block(n_inputs=0), Block(n_inputs=2)
        assert dst.connect_to(src, 1) is dst
        src.send_result(StreamData("x"))
        assert dst.get_input(1).get_nowait().data == "x"
        assert dst.get_input(0).empty()

    def test_connect_to_by_stream(self) -> None:
        src, dst = Block(n_inputs=0), Block(n_inputs=2)
        dst.connect_to(src, dst.get_input(1))
        src.send_result(StreamData("x"))
        assert dst.get_input(1).qsize() == 1

    def test_connect_to_default_input_zero(self) -> None:
        src, dst = Block(n_inputs=0), Block()
        dst.connect_to(src)
        src.send_result(StreamData("x"))
        assert dst.get_input(0).qsize() == 1

    def test_connect_to_foreign_stream_rejected(self) -> None:
        dst = Block()
        dst.name = "dst"
        with pytest.raises(GizmoInputError, match="not an input of gizmo 'dst'"):
            dst.connect_to(Block(), Stream())

    def test_connect_to_missing_input_rejected(self) -> None:
        with pytest.raises(GizmoInputError, match="no input 3"):
            Block().connect_to(Block(), 3)

    def test_connect_to_non_gizmo_rejected(self) -> None:
        with pytest.raises(TypeError):
            Block().connect_to("not a gizmo")  # type: ignore[arg-type]

    def test_connecting_twice_delivers_once(self) -> None:
        src, dst = Block(n_inputs=0), Block()
        dst.connect_to(src)
        dst.connect_to(src, 0)
        src >> dst
        src.send_result(StreamData("x"))
        assert dst.get_input(0).qsize() == 1

    def test_getitem_returns_gizmo_and_stream(self) -> None:
        gizmo = Block(n_inputs=2)
        assert gizmo[1] == (gizmo, gizmo.get_input(1))

    def test_getitem_missing_input(self) -> None:
        with pytest.raises(GizmoInputError):
            Block()[5]

    def test_rshift_returns_target_and_chains(self) -> None:
        a, b, c = Block(n_inputs=0), Block(), Block()
        assert (a >> b >> c) is c
        a.send_result(StreamData(1))
        b.send_result(StreamData(2))
        assert b.get_input(0).get_nowait().data == 1
        assert c.get_input(0).get_nowait().data == 2

    def test_rshift_with_index(self) -> None:
        src, dst = Block(n_inputs=0), Block(n_inputs=2)
        assert (src >> dst[1]) is dst
        src.send_result(StreamData(1))
        assert dst.get_input(1).qsize() == 1

    def test_rshift_with_stream_tuple(self) -> None:
        src, dst = Block(n_inputs=0), Block(n_inputs=2)
        src >> (dst, dst.get_input(1))
        src.send_result(StreamData(1))
        assert dst.get_input(1).qsize() == 1

    @pytest.mark.parametrize("other", ["text", 3, (Block(),), (Block(), 0, 1), ("x", 0)])
    def test_rshift_rejects_other_types(self, other: object) -> None:
        with pytest.raises(TypeError):
            Block() >> other  # type: ignore[operator]

    def test_get_connected_is_recursive_both_ways(self) -> None:
        a, b, c, d = Block(n_inputs=0), Block(), Block(n_inputs=2), Block(n_inputs=0)
        a >> b >> c
        d >> c[1]
        everyone = {a, b, c, d}
        for gizmo in everyone:
            assert gizmo.get_connected() == everyone

    def test_get_connected_of_isolated_gizmo(self) -> None:
        gizmo = Block()
        assert gizmo.get_connected() == {gizmo}


class TestDegirumHooks:
    def test_tags_default_to_name_and_nothing_required(self) -> None:
        block = Block()
        block.name = "Mine"
        assert block.get_tags() == ["Mine"] and block.require_tags(0) == []

    def test_unmet_required_tags_rejected_by_composition(self) -> None:
        class NeedsVideo(Block):
            def require_tags(self, inp: int) -> list[str]:
                return ["video"]

        class Video(Block):
            def get_tags(self) -> list[str]:
                return [self.name, "video"]

        needy = NeedsVideo()
        needy.connect_to(Block(0))
        with pytest.raises(CompositionError, match="video"):
            Composition(needy)
        fed = NeedsVideo()
        fed.connect_to(Video(0))
        Composition(fed)  # accepted

    def test_rshift_none_returns_self(self) -> None:
        a = Block()
        assert (a >> None) is a

    def test_send_result_stamps_meta_and_ticks_watchdog(self) -> None:
        class Ticks:
            count = 0

            def tick(self) -> None:
                self.count += 1

        src, dst = Block(0), Block()
        dst.connect_to(src)
        src.name, src.watchdog = "Src", Ticks()
        item = StreamData(1)
        src.send_result(item)
        src.send_result(StreamData(2))
        assert [name for name, _ in get_timing_info(item)] == ["Src"]
        assert item.meta.find_last(tag_timing)[Gizmo.key_gizmo] == "Src"
        assert src.watchdog.count == 2

    def test_empty_run_marker(self) -> None:
        class Marked(Block):
            @empty_run
            def run(self) -> None:
                raise AssertionError("never called")

        marked = Marked(0)
        Composition(marked).start()  # no thread, so run() is not called


class TestSendResult:
    def test_fan_out_delivers_same_item_to_every_consumer(self) -> None:
        src = Block(n_inputs=0)
        consumers = [Block() for _ in range(3)]
        for consumer in consumers:
            src >> consumer
        item = StreamData("frame")
        src.send_result(item)
        assert all(c.get_input(0).get_nowait() is item for c in consumers)
        assert src.result_cnt == 1

    def test_none_closes_all_outputs_without_counting(self) -> None:
        src, b, c = Block(n_inputs=0), Block(), Block()
        src >> b
        src >> c
        src.send_result(StreamData(1))
        src.send_result(None)
        assert [i.data for i in b.get_input(0)] == [1]
        assert [i.data for i in c.get_input(0)] == [1]
        assert src.result_cnt == 1

    def test_poison_closes_outputs(self) -> None:
        src, dst = Block(n_inputs=0), Block()
        src >> dst
        src.send_result(Stream._poison)
        assert list(dst.get_input(0)) == []
        assert src.result_cnt == 0

    def test_send_without_outputs_only_counts(self) -> None:
        gizmo = Block(n_inputs=0)
        gizmo.send_result(StreamData(1))
        assert gizmo.result_cnt == 1

    def test_blocked_put_gives_up_when_aborted(self) -> None:
        src, dst = Block(n_inputs=0), Block(maxsize=1)
        src >> dst
        src.send_result(StreamData("first"))
        sender = threading.Thread(target=src.send_result, args=(StreamData("second"),))
        sender.start()
        sender.join(timeout=0.1)
        assert sender.is_alive()  # blocked: the stream is full and nobody reads it
        src.abort()
        sender.join(timeout=2)
        assert not sender.is_alive()
        assert [i.data for i in [dst.get_input(0).get_nowait()]] == ["first"]
        assert dst.get_input(0).empty()

    def test_blocked_put_completes_when_room_appears(self) -> None:
        src, dst = Block(n_inputs=0), Block(maxsize=1)
        src >> dst
        src.send_result(StreamData("first"))
        sender = threading.Thread(target=src.send_result, args=(StreamData("second"),))
        sender.start()
        assert dst.get_input(0).get(timeout=2).data == "first"
        sender.join(timeout=2)
        assert not sender.is_alive()
        assert dst.get_input(0).get_nowait().data == "second"

    def test_close_of_full_stream_by_aborted_gizmo_forces_pill(self) -> None:
        src, dst = Block(n_inputs=0), Block(maxsize=1)
        src >> dst
        src.send_result(StreamData("stuck"))
        src.abort()
        src.send_result(None)  # must not hang
        assert list(dst.get_input(0)) == []
        assert dst.get_input(0).dropped_cnt == 1

    def test_close_waits_for_room_when_not_aborted(self) -> None:
        src, dst = Block(n_inputs=0), Block(maxsize=1)
        src >> dst
        src.send_result(StreamData("last"))
        closer = threading.Thread(target=src.send_result, args=(None,))
        closer.start()
        received = [item.data for item in dst.get_input(0)]
        closer.join(timeout=2)
        assert not closer.is_alive()
        assert received == ["last"]  # the last item is not sacrificed to the pill
        assert dst.get_input(0).dropped_cnt == 0
