"""Programs written against DeGirum's streams API, run on degirum_tools.streams and on ours.

Every case is a function taking the streams module (``degirum_tools.streams`` or
``dora_zmq.streams``) as ``s`` and returning a JSON-able summary of what a user can
observe: outputs, their order, return values, and whether (and with what text) an error
was raised. ``streams_driver.py`` runs them under each implementation; the differential
test compares the summaries.

This file is run by the reference venv's Python too: it imports only the standard library
(and NumPy inside the cases that send images).
Items always get an explicit ``StreamMeta()``: degirum shares one default meta between
all ``StreamData`` built without one (see ``shared_default_meta``), which would make
every other case depend on that quirk.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

Case = Callable[[Any], Any]
CASES: dict[str, Case] = {}

POLL_S = 0.005
DEADLINE_S = 5.0


def case(fn: Case) -> Case:
    """Register a case under its function name."""
    CASES[fn.__name__] = fn
    return fn


def error_summary(exc: BaseException, *needles: str) -> dict[str, Any]:
    """What is observable of an error: it is an Exception, and which texts it mentions."""
    return {"raised": True, "is_exception": isinstance(exc, Exception), "mentions": {n: n in str(exc) for n in needles}}


def wait_until(predicate: Callable[[], bool]) -> bool:
    """Poll a condition the implementation gives no event for (e.g. a queue size), with a deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(POLL_S)
    return False


# -- gizmos a user would write (the same classes, built on each implementation) --------------


def gizmos(s: Any) -> Any:
    """User gizmo classes built on the given streams module."""

    class Source(s.Gizmo):
        """Sends the items of a list (or counts forever with ``items=None``) as StreamData."""

        def __init__(self, items: list[Any] | None, name: str | None = None) -> None:
            super().__init__()
            self.items = items
            if name:
                self.name = name

        def run(self) -> None:
            i = 0
            while not self._abort and (self.items is None or i < len(self.items)):
                self.send_result(s.StreamData(i if self.items is None else self.items[i], s.StreamMeta()))
                i += 1

    class Double(s.Gizmo):
        """The single-input loop of the Gizmo docs: clone the meta, append, send."""

        def __init__(self, depth: int = 0, allow_drop: bool = False) -> None:
            super().__init__([(depth, allow_drop)])

        def run(self) -> None:
            for item in self.get_input(0):
                if self._abort:
                    break
                meta = item.meta.clone()
                meta.append({"in": item.data}, self.get_tags())
                self.send_result(s.StreamData(item.data * 2, meta))

    class Collect(s.Gizmo):
        """A user sink: keeps every item in ``got``."""

        def __init__(self, depth: int = 0, allow_drop: bool = False, name: str | None = None) -> None:
            super().__init__([(depth, allow_drop)])
            self.got: list[Any] = []
            if name:
                self.name = name

        def run(self) -> None:
            for item in self.get_input(0):
                if self._abort:
                    break
                self.got.append(item)

    class Failing(s.Gizmo):
        """Raises after sending ``after`` items."""

        def __init__(self, after: int = 0) -> None:
            super().__init__()
            self.after = after

        def run(self) -> None:
            for i in range(self.after):
                self.send_result(s.StreamData(i, s.StreamMeta()))
            raise ValueError("sensor on fire")

    class Gate(s.Gizmo):
        """Reads nothing until ``opened`` is set, then passes items on."""

        def __init__(self, depth: int = 0, allow_drop: bool = False) -> None:
            super().__init__([(depth, allow_drop)])
            self.opened = threading.Event()

        def run(self) -> None:
            self.opened.wait(DEADLINE_S)
            for item in self.get_input(0):
                if self._abort:
                    break
                self.send_result(item)

    return Source, Double, Collect, Failing, Gate


def data(items: list[Any]) -> list[Any]:
    return [item.data for item in items]


# -- Composition.start / wait / stop --------------------------------------------------------


@case
def start_runs_to_the_end(s: Any) -> Any:
    Source, Double, Collect, _, _ = gizmos(s)
    src, sink = Source([1, 2, 3]), Collect()
    src >> Double() >> sink
    returned = s.Composition(src).start()
    return {"returned": returned, "got": data(sink.got), "result_cnt": src.result_cnt}


@case
def start_wait_false_then_wait(s: Any) -> Any:
    Source, _, Collect, _, Gate = gizmos(s)
    gate, sink = Gate(), Collect()
    src = Source([1, 2, 3])
    src >> gate >> sink
    comp = s.Composition(src)
    comp.start(wait=False)
    before = data(sink.got)  # the gate holds everything back: start returned at once
    gate.opened.set()
    returned = comp.wait()
    return {"before": before, "returned": returned, "after": data(sink.got)}


@case
def start_raises_gizmo_error(s: Any) -> Any:
    _, _, Collect, Failing, _ = gizmos(s)
    bad, sink = Failing(after=2), Collect()
    bad >> sink
    bad.name = "Boom"
    comp = s.Composition(bad)
    out: dict[str, Any] = {}
    try:
        comp.start()
        out["start"] = "returned"
    except Exception as exc:
        out["start"] = error_summary(
            exc, "Boom", "sensor on fire", "ValueError", "Error detected during execution of Boom"
        )
    out["error_text"] = str(bad.error)
    for again in ("wait", "stop"):
        try:
            getattr(comp, again)()
            out[again] = "returned"
        except Exception as exc:
            out[again] = error_summary(exc, "Boom", "sensor on fire")
    return out


@case
def wait_before_start(s: Any) -> Any:
    Source, _, Collect, _, _ = gizmos(s)
    src = Source([1])
    src >> Collect()
    try:
        return {"returned": s.Composition(src).wait()}
    except Exception as exc:
        return error_summary(exc, "not started")


@case
def wait_after_start(s: Any) -> Any:
    Source, _, Collect, _, _ = gizmos(s)
    src, sink = Source([1, 2]), Collect()
    src >> sink
    comp = s.Composition(src)
    comp.start()
    try:
        comp.wait()
        waited: Any = "returned"
    except Exception as exc:
        waited = error_summary(exc, "not started")
    return {"wait": waited, "got": data(sink.got)}


@case
def stop_after_the_end(s: Any) -> Any:
    Source, _, Collect, _, _ = gizmos(s)
    src, sink = Source([1, 2]), Collect()
    src >> sink
    comp = s.Composition(src)
    comp.start()
    return {"stop": comp.stop(), "got": data(sink.got)}


@case
def start_twice_while_running(s: Any) -> Any:
    Source, _, Collect, _, Gate = gizmos(s)
    gate = Gate()
    src = Source([1])
    src >> gate >> Collect()
    comp = s.Composition(src)
    comp.start(wait=False)
    try:
        comp.start(wait=False)
        second: Any = "returned"
    except Exception as exc:
        second = error_summary(exc, "already started")
    gate.opened.set()
    comp.wait()
    return second


@case
def run_again_after_the_end(s: Any) -> Any:
    Source, Double, Collect, _, _ = gizmos(s)
    src, sink = Source([1, 2]), Collect()
    src >> Double() >> sink
    comp = s.Composition(src)
    comp.start()
    comp.start()
    return {"got": data(sink.got), "result_cnt": src.result_cnt}


@case
def request_stop_from_outside(s: Any) -> Any:
    Source, _, Collect, _, _ = gizmos(s)
    src, sink = Source(None), Collect(depth=5)  # counts forever; only request_stop ends it
    src >> sink
    comp = s.Composition(src)
    comp.start(wait=False)
    reached = wait_until(lambda: len(sink.got) >= 3)
    comp.request_stop()
    comp.wait()
    got = data(sink.got)
    return {"reached": reached, "in_order": got == list(range(len(got))), "aborted": [src._abort, sink._abort]}


@case
def request_stop_unblocks_a_full_stream(s: Any) -> Any:
    Source, _, _, _, Gate = gizmos(s)
    src, gate = Source(None), Gate(depth=3)  # the gate never opens: the source blocks on put
    src >> gate
    comp = s.Composition(src)
    comp.start(wait=False)
    full = wait_until(lambda: gate.get_input(0).qsize() == 3)
    comp.request_stop()
    gate.opened.set()
    comp.wait()
    return {"full": full, "result_cnt_at_least_3": src.result_cnt >= 3}


@case
def gizmo_stops_its_own_composition(s: Any) -> Any:
    Source, _, _, _, _ = gizmos(s)

    class StopAfterThree(s.Gizmo):
        def __init__(self) -> None:
            super().__init__([(0, False)])
            self.got: list[Any] = []

        def run(self) -> None:
            for item in self.get_input(0):
                self.got.append(item.data)
                if len(self.got) == 3:
                    self.composition.stop()
                    break

    src, stopper = Source(None), StopAfterThree()
    src >> stopper
    comp = s.Composition(src)
    comp.start()
    return {"got": stopper.got, "source_aborted": src._abort}


@case
def with_block(s: Any) -> Any:
    Source, Double, Collect, _, _ = gizmos(s)
    src, sink = Source([1, 2]), Collect()
    src >> Double() >> sink
    with s.Composition(src) as comp:
        entered = type(comp).__name__
    out: dict[str, Any] = {"entered": entered, "got": data(sink.got)}
    hold, sink2 = Source(None), Collect(depth=5)
    hold >> sink2
    try:
        with s.Composition(hold):
            raise KeyError("user code")
    except Exception as exc:
        out["body_error"] = [type(exc).__name__, str(exc)]
    out["stopped"] = hold._abort
    return out


@case
def errors_of_several_gizmos(s: Any) -> Any:
    _, _, _, Failing, _ = gizmos(s)
    first, second = Failing(), Failing()
    first.name, second.name = "First", "Second"
    try:
        s.Composition(first, second).start()
        return "returned"
    except Exception as exc:
        return error_summary(exc, "First", "Second", "sensor on fire")


# -- membership -------------------------------------------------------------------------------


@case
def generator_of_gizmos(s: Any) -> Any:
    Source, _, Collect, _, _ = gizmos(s)
    a, b = Source([1], name="A"), Source([2], name="B")
    sa, sb = Collect(name="SA"), Collect(name="SB")
    a >> sa
    b >> sb
    comp = s.Composition(g for g in (a, b))
    comp.start()
    return {
        "got": [data(sa.got), data(sb.got)],
        "members": sorted(next(iter(d)) for d in comp.get_current_queue_sizes()),
    }


@case
def list_of_gizmos(s: Any) -> Any:
    Source, _, Collect, _, _ = gizmos(s)
    a, sink = Source([1]), Collect()
    a >> sink
    try:
        s.Composition([a, sink]).start()
        return {"got": data(sink.got)}
    except Exception as exc:
        return error_summary(exc, "Invalid argument type")


@case
def add_and_call(s: Any) -> Any:
    Source, _, Collect, _, _ = gizmos(s)
    comp = s.Composition()
    src = comp.add(Source([1, 2]))
    sink = comp(Collect())
    src >> sink
    comp.start()
    return {"same": [isinstance(src, s.Gizmo), isinstance(sink, s.Gizmo)], "got": data(sink.got)}


@case
def invalid_argument(s: Any) -> Any:
    try:
        s.Composition(42)
        return "accepted"
    except Exception as exc:
        return error_summary(exc)


@case
def required_tags(s: Any) -> Any:
    Source, _, Collect, _, _ = gizmos(s)

    class NeedsVideo(Collect):
        def require_tags(self, inp: int) -> list[str]:
            return ["video"]

    class VideoSource(Source):
        def get_tags(self) -> list[str]:
            return [self.name, "video"]

    out = {}
    plain, needy = Source([1]), NeedsVideo()
    plain >> needy
    try:
        s.Composition(needy)
        out["unmet"] = "accepted"
    except Exception as exc:
        out["unmet"] = error_summary(exc, "NeedsVideo")
    video, needy2 = VideoSource([1]), NeedsVideo()
    video >> needy2
    s.Composition(needy2).start()
    out["met"] = data(needy2.got)
    out["default_tags"] = Source([]).get_tags()
    return out


@case
def gizmo_without_run(s: Any) -> Any:
    class Idle(s.Gizmo):
        pass

    try:
        idle = Idle()
    except Exception as exc:
        return {"construct": error_summary(exc)}
    comp = s.Composition(idle)
    comp.start()
    return {"construct": "ok", "threads": "none-left"}


# -- connections, fan-out, multi-input --------------------------------------------------------


@case
def rshift_and_connect_to(s: Any) -> Any:
    Source, Double, Collect, _, _ = gizmos(s)
    src, dbl, sink = Source([1]), Double(), Collect()
    chained = src >> dbl
    returned = dbl >> None
    returned_by_connect = sink.connect_to(dbl)
    return {
        "rshift_returns_target": chained is dbl,
        "rshift_none_returns_self": returned is dbl,
        "connected": sorted(g.name for g in src.get_connected()),
        "getitem_is_tuple": isinstance(sink[0], tuple) and sink[0][0] is sink and sink[0][1] is sink.get_input(0),
        "connect_to_returns_self": returned_by_connect is sink,
    }


@case
def fan_out(s: Any) -> Any:
    Source, _, Collect, _, _ = gizmos(s)
    src = Source([1, 2, 3])
    sinks = [Collect(name=f"S{i}") for i in range(3)]
    for sink in sinks:
        src >> sink
    s.Composition(src).start()
    return {
        "got": [data(sink.got) for sink in sinks],
        "same_objects": all(sinks[0].got[i] is sink.got[i] for sink in sinks for i in range(3)),
    }


@case
def multi_input_get_nowait(s: Any) -> Any:
    Source, _, Collect, _, _ = gizmos(s)

    class Merge(s.Gizmo):
        """The documented multi-input loop: poll every input with get_nowait()."""

        def __init__(self) -> None:
            super().__init__([(0, False), (0, False)])

        def run(self) -> None:
            import queue

            open_inputs = list(self.get_inputs())
            while open_inputs and not self._abort:
                for inp in list(open_inputs):
                    try:
                        item = inp.get_nowait()
                    except queue.Empty:
                        continue
                    if item == s.Stream._poison:
                        open_inputs.remove(inp)
                        continue
                    self.send_result(item)
                time.sleep(0.001)

    left, right, merge, sink = Source([1, 2, 3], "L"), Source([10, 20], "R"), Merge(), Collect()
    left >> merge[0]
    right >> merge[1]
    merge >> sink
    s.Composition(merge).start()
    return sorted(data(sink.got))


@case
def pill_is_none(s: Any) -> Any:
    stream = s.Stream()
    stream.put(1)
    stream.close()
    first, pill = stream.get(), stream.get()
    stream.put(2)
    stream.put(None)
    stream.put(3)
    return {"first": first, "pill_is_none": pill is None, "poison": repr(s.Stream._poison), "iterated": list(stream)}


@case
def send_none_closes_outputs(s: Any) -> Any:
    _, _, Collect, _, _ = gizmos(s)

    class Early(s.Gizmo):
        def run(self) -> None:
            self.send_result(s.StreamData(1, s.StreamMeta()))
            self.send_result(None)
            self.after = self.result_cnt

    early, sink = Early(), Collect()
    early >> sink
    s.Composition(early).start()
    return {"got": data(sink.got), "result_cnt": early.after}


@case
def outputs_end_when_run_returns(s: Any) -> Any:
    Source, _, Collect, _, _ = gizmos(s)

    class TakeTwo(s.Gizmo):
        def __init__(self) -> None:
            super().__init__([(0, False)])

        def run(self) -> None:
            for n, item in enumerate(self.get_input(0)):
                if n == 2:
                    return  # stops reading: the composition closes this gizmo's outputs
                self.send_result(item)

    src, take, sink = Source([1, 2, 3, 4, 5]), TakeTwo(), Collect()
    src >> take >> sink
    s.Composition(src).start()
    return {"got": data(sink.got), "left_in_input": take.get_input(0).qsize() > 0}


# -- reports ----------------------------------------------------------------------------------


@case
def bottlenecks_with_detection(s: Any) -> Any:
    Source, _, Collect, _, Gate = gizmos(s)
    src, gate, sink = Source(list(range(10))), Gate(depth=3), Collect()
    src >> gate >> sink
    comp = s.Composition(src)
    comp.start(wait=False, detect_bottlenecks=True)
    settled = wait_until(lambda: gate.get_input(0).dropped_cnt == 8)  # 7 items and 1 for the pill
    gate.opened.set()
    comp.wait()
    return {
        "settled": settled,
        "bottlenecks": comp.get_bottlenecks(),
        "got": data(sink.got),
    }


@case
def no_bottlenecks_without_detection(s: Any) -> Any:
    Source, _, Collect, _, _ = gizmos(s)
    src = Source(list(range(10)))
    src >> Collect(depth=3)
    comp = s.Composition(src)
    comp.start()
    return comp.get_bottlenecks()


@case
def queue_sizes_while_stalled_and_after(s: Any) -> Any:
    Source, _, Collect, _, Gate = gizmos(s)
    src, gate, sink = Source([1, 2, 3, 4, 5]), Gate(depth=10), Collect()
    src.name, gate.name, sink.name = "Src", "Gate", "Sink"
    src >> gate >> sink
    comp = s.Composition(src)
    comp.start(wait=False)
    stalled = wait_until(lambda: gate.get_input(0).qsize() == 6)  # 5 items and the pill
    during = sorted(comp.get_current_queue_sizes(), key=lambda d: next(iter(d)))
    gate.opened.set()
    comp.wait()
    after = sorted(comp.get_current_queue_sizes(), key=lambda d: next(iter(d)))
    return {"stalled": stalled, "during": during, "after": after}


@case
def result_counts_and_fps(s: Any) -> Any:
    Source, Double, Collect, _, _ = gizmos(s)
    src, dbl, sink = Source([1, 2, 3]), Double(), Collect()
    src >> dbl >> sink
    s.Composition(src).start()
    return {
        "result_cnt": [src.result_cnt, dbl.result_cnt, sink.result_cnt],
        "fps_positive": src.fps > 0 and dbl.fps > 0,
        "elapsed_positive": src.elapsed_s > 0,
        "error": [src.error, dbl.error, sink.error],
    }


# -- StreamMeta / StreamData ----------------------------------------------------------------


@case
def meta_find_and_clone(s: Any) -> Any:
    meta = s.StreamMeta({"w": 640}, "Resize")
    meta.append({"boxes": 2}, ["Inference", "Detection"])
    meta.append({"boxes": 3}, "Inference")
    twin = meta.clone()
    twin.append("extra", "Resize")
    return {
        "find": meta.find("Inference"),
        "find_last": meta.find_last("Detection"),
        "missing": [meta.find("nope"), meta.find_last("nope")],
        "get": [meta.get(0), meta.get(-1)],
        "clone_independent": [meta.find("Resize"), twin.find("Resize")],
        "untagged": s.StreamMeta("x").find_last("x"),
    }


@case
def remove_last_under_several_tags(s: Any) -> Any:
    meta = s.StreamMeta()
    meta.append("a", ["x", "y"])
    meta.append("b", "y")
    meta.append("c", ["x", "y"])
    meta.remove_last("y")
    after_one = {"x": meta.find("x"), "y": meta.find("y"), "last_y": meta.find_last("y"), "get2": meta.get(2)}
    meta.remove_last("y")
    meta.remove_last("y")
    meta.remove_last("y")
    return {"after_one": after_one, "x": meta.find("x"), "y": meta.find("y"), "last_y": meta.find_last("y")}


@case
def remove_last_on_clone(s: Any) -> Any:
    meta = s.StreamMeta("a", ["x", "y"])
    twin = meta.clone()
    twin.remove_last("x")
    return {"orig": [meta.find("x"), meta.find("y")], "twin": [twin.find("x"), twin.find("y")]}


@case
def stream_data_append_meta(s: Any) -> Any:
    item = s.StreamData("frame", s.StreamMeta())
    item.append_meta({"k": 1}, ["A", "B"])
    item.append_meta("plain")
    return {"data": item.data, "A": item.meta.find("A"), "B": item.meta.find_last("B"), "first": item.meta.get(0)}


@case
def shared_default_meta(s: Any) -> Any:
    a, b = s.StreamData(1), s.StreamData(2)
    a.append_meta("only a", "tag")
    return {"b_sees_a": b.meta.find("tag")}


@case
def duplicate_tag_in_list(s: Any) -> Any:
    meta = s.StreamMeta()
    meta.append("a", ["t", "t"])
    return meta.find("t")


@case
def timing_stamps(s: Any) -> Any:
    Source, Double, Collect, _, _ = gizmos(s)
    src, dbl, sink = Source([1]), Double(), Collect()
    src.name, dbl.name = "Src", "Dbl"
    src >> dbl >> sink
    s.Composition(src).start()
    (item,) = sink.got
    info = s.get_timing_info(item)
    stamps = item.meta.find(s.tag_timing)
    return {
        "tag": s.tag_timing,
        "names": [name for name, _ in info],
        "ordered": [t for _, t in info] == sorted(t for _, t in info),
        "keys": sorted(stamps[0]),
        "class_keys": [s.Gizmo.key_gizmo, s.Gizmo.key_timestamp],
    }


# -- Stream ----------------------------------------------------------------------------------


@case
def stream_drop_oldest(s: Any) -> Any:
    stream = s.Stream(3, allow_drop=True)
    for i in range(5):
        stream.put(i)
    out = {"dropped": stream.dropped_cnt, "qsize": stream.qsize()}
    stream.close()
    out["after_close"] = {"dropped": stream.dropped_cnt, "items": list(stream)}
    return out


@case
def stream_minimum_depth(s: Any) -> Any:
    out: dict[str, Any] = {"min_queue_size": s.Stream.min_queue_size}
    for depth in (1, 2, 3, -1):
        try:
            s.Stream(depth)
            out[str(depth)] = "ok"
        except Exception as exc:
            out[str(depth)] = error_summary(exc)
    return out


@case
def stream_close_force(s: Any) -> Any:
    stream = s.Stream(3)
    for i in range(3):
        stream.put(i)
    stream.close(force=True)
    stream.put(99)
    return {"qsize": stream.qsize(), "items": list(stream)}


@case
def stream_put_timeout_when_full(s: Any) -> Any:
    import queue

    stream = s.Stream(3)
    for i in range(3):
        stream.put(i)
    try:
        stream.put(3, timeout=0.01)
        return "put"
    except queue.Full:
        return "Full"


@case
def missing_input(s: Any) -> Any:
    _, _, Collect, _, _ = gizmos(s)
    try:
        Collect().get_input(3)
        return "returned"
    except Exception as exc:
        return error_summary(exc)


# -- the library's SinkGizmo ------------------------------------------------------------------


@case
def library_sink(s: Any) -> Any:
    Source, Double, _, _, _ = gizmos(s)
    src, sink = Source([1, 2, 3]), s.SinkGizmo()
    src >> Double() >> sink
    s.Composition(src).start()
    return [(item.data, item.meta.find_last("Double")) for item in sink()]


@case
def library_sink_drops_what_nobody_reads(s: Any) -> Any:
    Source, _, _, _, _ = gizmos(s)
    src, sink = Source(list(range(10))), s.SinkGizmo(stream_depth=3, allow_drop=True)
    src >> sink
    comp = s.Composition(src)
    comp.start()
    return {"got": [item.data for item in sink()], "bottlenecks": comp.get_bottlenecks()}


@case
def library_sink_read_while_running(s: Any) -> Any:
    Source, _, _, _, _ = gizmos(s)
    src, sink = Source(list(range(25))), s.SinkGizmo(stream_depth=5)
    src >> sink
    comp = s.Composition(src)
    comp.start(wait=False)
    got = [item.data for item in sink()]
    comp.wait()
    return got


@case
def library_iterator_source_images(s: Any) -> Any:
    import numpy as np

    frames = [np.zeros((4, 6, 3), np.uint8), np.ones((2, 3), np.uint8), np.full((5, 5, 4), 7, np.uint8)]
    src, sink = s.IteratorSourceGizmo(iter(frames), fps=12.5), s.SinkGizmo()
    src >> sink
    s.Composition(src).start()
    out = []
    for item in sink():
        video = item.meta.find_last("dgt_video")
        out.append(
            {
                "shape": list(item.data.shape),
                "sum": int(item.data.sum()),
                "video": {k: v for k, v in video.items() if k != "timestamp"},
                "by_name": item.meta.find_last("IteratorSourceGizmo") is video,
            }
        )
    return {"items": out, "tags": src.get_tags()}


# -- cases that show a listed, deliberate difference ------------------------------------------


@case
def bottlenecks_on_two_inputs(s: Any) -> Any:
    Source, _, _, _, _ = gizmos(s)

    class TwoInputs(s.Gizmo):
        def __init__(self) -> None:
            super().__init__([(3, True), (3, True)])
            self.opened = threading.Event()

        def run(self) -> None:
            self.opened.wait(DEADLINE_S)
            for inp in self.get_inputs():
                for _ in inp:
                    pass

    a, b, two = Source(list(range(5)), "A"), Source(list(range(8)), "B"), TwoInputs()
    a >> two[0]
    b >> two[1]
    comp = s.Composition(two)
    comp.start(wait=False)
    settled = wait_until(lambda: [i.dropped_cnt for i in two.get_inputs()] == [3, 6])
    two.opened.set()
    comp.wait()
    return {"settled": settled, "bottlenecks": comp.get_bottlenecks()}


@case
def detect_bottlenecks_leaves_allow_drop(s: Any) -> Any:
    Source, _, Collect, _, _ = gizmos(s)
    src, sink = Source([1]), Collect(depth=3)
    src >> sink
    comp = s.Composition(src)
    comp.start(detect_bottlenecks=True)
    return sink.get_input(0).allow_drop


@case
def with_body_error_and_gizmo_error(s: Any) -> Any:
    _, _, _, Failing, _ = gizmos(s)
    bad = Failing()
    try:
        with s.Composition(bad):
            while bad.error is None and wait_until(lambda: bad.error is not None):
                pass
            raise KeyError("user code")
    except Exception as exc:
        return {"raised": "user code" in str(exc), "gizmo_error_raised": "sensor on fire" in str(exc)}
    return "nothing raised"


@case
def gizmo_error_type(s: Any) -> Any:
    _, _, _, Failing, _ = gizmos(s)
    bad = Failing()
    try:
        s.Composition(bad).start()
    except Exception:
        pass
    return {"type": type(bad.error).__name__, "text": str(bad.error)}


@case
def add_while_running(s: Any) -> Any:
    Source, _, Collect, _, Gate = gizmos(s)
    src, gate = Source([1]), Gate()
    src >> gate >> Collect()
    comp = s.Composition(src)
    comp.start(wait=False)
    try:
        comp.add(Collect(name="Late"))
        added: Any = "added"
    except Exception as exc:
        added = error_summary(exc, "running")
    gate.opened.set()
    comp.wait()
    return added


@case
def send_plain_value(s: Any) -> Any:
    _, _, Collect, _, _ = gizmos(s)

    class Plain(s.Gizmo):
        def run(self) -> None:
            self.send_result(42)

    plain, sink = Plain(), Collect()
    plain >> sink
    try:
        s.Composition(plain).start()
        return {"got": sink.got}
    except Exception as exc:
        return error_summary(exc, "meta")


@case
def tuple_of_tags(s: Any) -> Any:
    meta = s.StreamMeta()
    meta.append("a", ("x", "y"))
    return [meta.find("x"), meta.find("y")]


@case
def non_string_tags(s: Any) -> Any:
    meta = s.StreamMeta("a", 5)
    meta.append("b", [5, "five"])
    return [meta.find(5), meta.find("five"), meta.find_last(5)]


@case
def empty_composition(s: Any) -> Any:
    comp = s.Composition()
    comp.start()
    return {"queues": comp.get_current_queue_sizes(), "bottlenecks": comp.get_bottlenecks(), "stop": comp.stop()}


@case
def run_again_after_stop(s: Any) -> Any:
    Source, _, Collect, _, _ = gizmos(s)
    src, sink = Source([1, 2]), Collect()
    src >> sink
    comp = s.Composition(src)
    comp.start()
    comp.stop()
    comp.start()
    return data(sink.got)


@case
def drop_oldest_after_close(s: Any) -> Any:
    import queue

    stream = s.Stream(3, allow_drop=True)
    stream.put(1)
    stream.close()
    for i in (2, 3, 4):
        stream.put(i)
    items = []
    while True:
        try:
            items.append(stream.get_nowait())
        except queue.Empty:
            break
    return {"items": items, "dropped": stream.dropped_cnt}


@case
def close_a_full_stream(s: Any) -> Any:
    stream = s.Stream(3)
    for i in range(3):
        stream.put(i)
    closer = threading.Thread(target=stream.close, daemon=True)
    closer.start()
    closer.join(1.0)
    if closer.is_alive():
        return {"close": "blocks until a reader makes room"}
    return {"close": "returned", "items": list(stream), "dropped": stream.dropped_cnt}


@case
def library_sink_default_depth(s: Any) -> Any:
    return s.SinkGizmo().get_input(0).maxsize


@case
def abort_one_gizmo(s: Any) -> Any:
    Source, Double, Collect, _, _ = gizmos(s)
    src, sink = Source(None), Collect()  # counts forever until aborted
    src >> Double() >> sink
    comp = s.Composition(src)
    comp.start(wait=False)
    reached = wait_until(lambda: len(sink.got) >= 3)
    src.abort()  # only the source: the end of its output ripples down the chain
    comp.wait()
    got = data(sink.got)
    return {
        "reached": reached,
        "doubled_in_order": got == [2 * i for i in range(len(got))],
        "sink_aborted": sink._abort,
    }


@case
def watchdog_ticks(s: Any) -> Any:
    Source, _, Collect, _, _ = gizmos(s)

    class Ticks:
        def __init__(self) -> None:
            self.count = 0

        def tick(self) -> None:
            self.count += 1

    src = Source([1, 2, 3, 4])
    src.watchdog = Ticks()
    src >> Collect()
    s.Composition(src).start()
    return src.watchdog.count


@case
def fan_out_with_one_dropping_branch(s: Any) -> Any:
    Source, _, Collect, _, Gate = gizmos(s)
    src, gate, fast, slow = Source(list(range(10))), Gate(depth=3, allow_drop=True), Collect(name="Fast"), Collect()
    src >> fast
    src >> gate >> slow
    comp = s.Composition(src)
    comp.start(wait=False)
    settled = wait_until(lambda: gate.get_input(0).dropped_cnt == 8)
    gate.opened.set()
    comp.wait()
    return {"settled": settled, "fast": data(fast.got), "slow": data(slow.got), "bottlenecks": comp.get_bottlenecks()}


@case
def connected_gizmo_not_added(s: Any) -> Any:
    Source, _, Collect, _, _ = gizmos(s)
    comp = s.Composition()
    src = comp.add(Source([1, 2]))
    sink = Collect()
    src >> sink  # connected, but never added
    comp.start()
    return data(sink.got)


@case
def library_iterator_source_other_items(s: Any) -> Any:
    src, sink = s.IteratorSourceGizmo(iter([1, 2])), s.SinkGizmo()
    src >> sink
    try:
        s.Composition(src).start()
        return {"got": [item.data for item in sink()]}
    except Exception as exc:
        return error_summary(exc, "Unsupported image input type")
