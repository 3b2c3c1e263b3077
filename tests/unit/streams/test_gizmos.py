"""The generic gizmos: IteratorSourceGizmo, SinkGizmo, FunctionGizmo, FanInGizmo."""

from __future__ import annotations

import threading

import pytest

from dora_zmq.streams import (
    Composition,
    FanInGizmo,
    FunctionGizmo,
    IteratorSourceGizmo,
    SinkGizmo,
    StreamConfigError,
    StreamData,
    StreamMeta,
    get_timing_info,
    tag_timing,
    tag_video,
)

pytestmark = pytest.mark.timeout(5)


def untimed(meta: StreamMeta) -> list[tuple[object, list[str]]]:
    """The ``(meta, tags)`` entries without the timing stamps that every ``send_result()`` adds."""
    return [(entry, tags) for entry, tags in meta if tags != [tag_timing]]


class TestIteratorSource:
    def test_wraps_plain_items(self) -> None:
        sink = SinkGizmo(collect=True)
        with Composition(IteratorSourceGizmo([1, None, "x"]) >> sink):
            pass
        assert [i.data for i in sink.results] == [1, None, "x"]
        assert all(isinstance(i, StreamData) and untimed(i.meta) == [] for i in sink.results)
        assert [name for i in sink.results for name, _ in get_timing_info(i)] == ["IteratorSourceGizmo"] * 3

    def test_passes_stream_data_unchanged(self) -> None:
        item = StreamData("frame", StreamMeta({"idx": 0}, "Video"))
        sink = SinkGizmo(collect=True)
        with Composition(IteratorSourceGizmo([item]) >> sink):
            pass
        assert sink.results == [item]

    def test_stops_when_aborted(self) -> None:
        source = IteratorSourceGizmo(range(1000))
        source.abort()
        source.run()  # outside a composition: the flag alone ends the loop
        assert source.result_cnt == 0


class TestIteratorSourceImages:
    def test_images_get_degirum_video_meta(self) -> None:
        np = pytest.importorskip("numpy")
        frames = [np.zeros((4, 6, 3), np.uint8), np.ones((2, 3), np.uint8), np.full((5, 5, 4), 7, np.uint8)]
        src, sink = IteratorSourceGizmo(frames, fps=25.0), SinkGizmo()
        Composition(src >> sink).start()
        items = list(sink())
        assert [i.data.shape for i in items] == [(4, 6, 3), (2, 3, 3), (5, 5, 3)]
        video = [i.meta.find_last(tag_video) for i in items]
        assert [(v["frame_width"], v["frame_height"], v["frame_id"]) for v in video] == [
            (6, 4, 0),
            (3, 2, 1),
            (5, 5, 2),
        ]
        assert all(v["fps"] == 25.0 and v["frame_count"] == -1 and v["file_path"] == "" for v in video)
        assert items[0].meta.find_last("IteratorSourceGizmo") is video[0]
        assert src.get_tags() == ["IteratorSourceGizmo", tag_video]


class TestSink:
    def test_call_returns_the_input_stream_as_in_degirum(self) -> None:
        src, sink = IteratorSourceGizmo(range(10)), SinkGizmo(stream_depth=3, allow_drop=True)
        comp = Composition(src >> sink)
        comp.start()  # the sink's run() returns at once: items wait (or drop) in its input
        assert sink() is sink.get_input(0)
        assert [item.data for item in sink()] == [8, 9]
        assert comp.get_bottlenecks() == [{"SinkGizmo": 8}]

    def test_iterating_the_sink_leaves_no_stale_end_for_the_next_run(self) -> None:
        src, sink = IteratorSourceGizmo([1, 2]), SinkGizmo()
        comp = Composition(src >> sink)
        for _ in range(2):
            comp.start()
            assert [item.data for item in sink] == [1, 2]
            assert list(sink) == []

    def test_collecting_sink_is_read_the_same_way(self) -> None:
        sink = SinkGizmo(collect=True)
        Composition(IteratorSourceGizmo([1, 2]) >> sink).start()
        assert [item.data for item in sink()] == [1, 2]
        assert [item.data for item in sink.results] == [1, 2]

    def test_iterate_from_another_thread_while_running(self) -> None:
        src = IteratorSourceGizmo(range(50))
        sink = SinkGizmo(3)
        with Composition(src >> sink):
            received = [item.data for item in sink]
        assert received == list(range(50))
        assert sink.results == []  # collecting is off by default

    def test_later_iteration_ends_at_once(self) -> None:
        sink = SinkGizmo()
        with Composition(IteratorSourceGizmo([1]) >> sink):
            pass
        assert [i.data for i in sink] == [1]
        assert list(sink) == []

    def test_collect_results(self) -> None:
        sink = SinkGizmo(collect=True)
        with Composition(IteratorSourceGizmo("abc") >> sink):
            pass
        assert [i.data for i in sink.results] == ["a", "b", "c"]
        assert sink.result_cnt == 3

    def test_sink_forwards_to_connected_gizmos(self) -> None:
        tap, end = SinkGizmo(), SinkGizmo(collect=True)
        with Composition(IteratorSourceGizmo([1, 2]) >> tap >> end):
            pass
        assert [i.data for i in end.results] == [1, 2]

    def test_iteration_ends_when_composition_stops(self) -> None:
        sink = SinkGizmo()
        comp = Composition(sink)  # no producer: only request_stop ends it
        comp.start(wait=False)
        done = threading.Event()

        def reader() -> None:
            list(sink)
            done.set()

        thread = threading.Thread(target=reader)
        thread.start()
        comp.stop()
        thread.join(timeout=2)
        assert done.is_set()


class TestFunction:
    def test_maps_data_and_keeps_meta(self) -> None:
        meta = StreamMeta("orig", "src")
        sink = SinkGizmo(collect=True)
        fn = FunctionGizmo(str.upper)
        with Composition(IteratorSourceGizmo([StreamData("a", meta)]) >> fn >> sink):
            pass
        (result,) = sink.results
        assert result.data == "A"
        assert result.meta is meta
        assert fn.name == "FunctionGizmo"

    def test_none_result_skips_item(self) -> None:
        sink = SinkGizmo(collect=True)
        evens = FunctionGizmo(lambda x: x if x % 2 == 0 else None, "evens")
        with Composition(IteratorSourceGizmo(range(6)) >> evens >> sink):
            pass
        assert [i.data for i in sink.results] == [0, 2, 4]
        assert evens.result_cnt == 3

    def test_append_meta_tags_result_with_name_on_a_clone(self) -> None:
        meta = StreamMeta("orig", "src")
        sink = SinkGizmo(collect=True)
        square = FunctionGizmo(lambda x: x * x, "square", append_meta=True)
        with Composition(IteratorSourceGizmo([StreamData(3, meta)]) >> square >> sink):
            pass
        (result,) = sink.results
        assert result.meta.find_last("square") == 9
        assert result.meta.find_last("src") == "orig"
        assert untimed(meta) == [("orig", ["src"])]  # the square gizmo did not modify the received meta

    def test_custom_input_stream(self) -> None:
        fn = FunctionGizmo(abs, "abs", [(4, True)])
        stream = fn.get_input(0)
        assert (stream.maxsize, stream.allow_drop) == (4, True)

    @pytest.mark.parametrize("sizes", [[], [(0, False), (0, False)]])
    def test_exactly_one_input(self, sizes: list[tuple[int, bool]]) -> None:
        with pytest.raises(StreamConfigError, match="exactly one input"):
            FunctionGizmo(abs, None, sizes)


class TestFanIn:
    def test_merges_data_and_meta(self) -> None:
        a = IteratorSourceGizmo([StreamData("a0", StreamMeta("ma", "A"))])
        b = IteratorSourceGizmo([StreamData("b0", StreamMeta("mb", ["B", "shared"]))])
        c = IteratorSourceGizmo([StreamData("c0", StreamMeta("mc", "shared"))])
        fan_in = FanInGizmo(3)
        sink = SinkGizmo(collect=True)
        a >> fan_in[0]
        b >> fan_in[1]
        c >> fan_in[2]
        with Composition(fan_in >> sink):
            pass
        (merged,) = sink.results
        assert merged.data == ["a0", "b0", "c0"]
        assert untimed(merged.meta) == [("ma", ["A"]), ("mb", ["B", "shared"]), ("mc", ["shared"])]
        assert merged.meta.find("shared") == ["mb", "mc"]

    def test_input_meta_not_modified(self) -> None:
        first = StreamMeta("m0", "x")
        a = IteratorSourceGizmo([StreamData(0, first)])
        b = IteratorSourceGizmo([StreamData(1, StreamMeta("m1", "x"))])
        fan_in = FanInGizmo(2)
        sink = SinkGizmo(collect=True)
        a >> fan_in[0]
        b >> fan_in[1]
        with Composition(fan_in >> sink):
            pass
        assert untimed(first) == [("m0", ["x"])]
        assert sink.results[0].meta is not first

    def test_ends_when_any_input_ends(self) -> None:
        short = IteratorSourceGizmo(range(2))
        long = IteratorSourceGizmo(range(100))
        fan_in = FanInGizmo(2, maxsize=2)
        sink = SinkGizmo(collect=True)
        short >> fan_in[0]
        long >> fan_in[1]
        with Composition(fan_in >> sink):
            pass
        assert [i.data for i in sink.results] == [[0, 0], [1, 1]]

    @pytest.mark.parametrize("n", [0, -1, True])
    def test_needs_an_input(self, n: int) -> None:
        with pytest.raises(StreamConfigError):
            FanInGizmo(n)

    def test_input_streams(self) -> None:
        fan_in = FanInGizmo(2, 3, True)
        assert [(s.maxsize, s.allow_drop) for s in fan_in.get_inputs()] == [(3, True), (3, True)]
