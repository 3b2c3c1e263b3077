"""The event queue: keep-newest per input, INPUT_CLOSED after the data, STOP ordering."""

from __future__ import annotations

import threading

from dora_zmq.node._events import Event, EventQueue


def data(i: int) -> Event:
    return Event(type="INPUT", id="a", value=None, metadata={"i": i})


def test_queue_size_keeps_the_newest_and_counts_drops() -> None:
    q = EventQueue({"a": 2})
    for i in range(5):
        q.push_input("a", data(i))
    assert [q.get()["metadata"]["i"] for _ in range(2)] == [3, 4]
    assert q.drops == {"a": 3}


def test_input_closed_after_data_then_stop_then_end() -> None:
    q = EventQueue({"a": 10, "b": 10})
    q.push_input("a", data(1))
    q.close_input("a")
    q.push_input("b", Event(type="INPUT", id="b", value=None, metadata={}))
    q.close_input("b")
    kinds = [(e["type"], e["id"]) for e in iter(lambda: q.get(), None)]
    assert kinds == [
        ("INPUT", "a"),
        ("INPUT_CLOSED", "a"),
        ("INPUT", "b"),
        ("INPUT_CLOSED", "b"),
        ("STOP", "ALL_INPUTS_CLOSED"),
    ]
    assert q.ended and q.get() is None


def test_failed_upstream_gives_node_failed_first() -> None:
    q = EventQueue({"a": 10})
    q.close_input("a", failed="boom", source="up")
    first = q.get()
    assert first["type"] == "NODE_FAILED" and first["error"] == "boom" and first["source"] == "up"
    assert first["id"] == "up"  # dora 1.1: the failed node's id, details in value
    assert first["value"] == {"source_node_id": "up", "error": "boom", "affected_input_ids": ["a"]}
    assert q.get()["type"] == "INPUT_CLOSED"


def test_one_node_failed_for_several_inputs() -> None:
    q = EventQueue({"a": 10, "b": 10})
    q.close_inputs(["a", "b"], failed="boom", source="up")
    events = [(e["type"], e["id"]) for e in iter(lambda: q.get(), None)]
    assert events == [
        ("NODE_FAILED", "up"),
        ("INPUT_CLOSED", "a"),
        ("INPUT_CLOSED", "b"),
        ("STOP", "ALL_INPUTS_CLOSED"),
    ]


def test_manual_stop_jumps_the_queue() -> None:
    q = EventQueue({"a": 10})
    q.push_input("a", data(1))
    q.stop()
    assert (q.get()["type"], q.get()) == ("STOP", None)


def test_urgent_error_precedes_stop() -> None:
    q = EventQueue({"a": 10})
    q.push_error("receiver failed", urgent=True)
    q.stop("INTERNAL_ERROR")
    assert [q.get()["type"], q.get()["id"]] == ["ERROR", "INTERNAL_ERROR"]


def test_get_sees_a_push_from_another_thread() -> None:
    # get() never waits (the session receives while the queue is empty); what another
    # thread pushed is there once that thread is done.
    q = EventQueue({"a": 10})
    assert q.get() is None
    t = threading.Thread(target=lambda: q.push_input("a", data(7)))
    t.start()
    t.join(5)
    assert q.get()["metadata"]["i"] == 7


def test_data_is_lazy_bytes() -> None:
    import pyarrow as pa

    event = Event(type="INPUT", id="a", value=pa.array([1, 2], type=pa.uint8()), metadata={})
    assert not dict.__contains__(event, "data")  # not computed yet...
    assert "data" in event  # ...yet present for code that tests the key first
    assert event.get("data") == b"\x01\x02"
    assert event["data"] == b"\x01\x02"


def test_queued_bytes_are_bounded_per_input_dropping_the_oldest() -> None:
    import pyarrow as pa

    q = EventQueue({"big": 10_000, "small": 10_000}, max_bytes=3 * 1024)
    for i in range(10):
        q.push_input(
            "big", Event(type="INPUT", id="big", value=pa.array([i] * 128, pa.int64()), metadata={})
        )  # 1 KiB each
    q.push_input("small", Event(type="INPUT", id="small", value=pa.array([1], pa.int64()), metadata={}))
    assert q.drops == {"big": 7, "small": 0}  # 10,000 messages allowed, but only 3 KiB
    got = [q.get() for _ in range(4)]
    assert [e["value"][0].as_py() for e in got if e["id"] == "big"] == [7, 8, 9]
    # A value larger than the whole budget still gets through (the newest always fits).
    q.push_input("big", Event(type="INPUT", id="big", value=pa.array([0] * 1024, pa.int64()), metadata={}))
    assert q.get()["value"].nbytes == 8 * 1024


def test_data_only_on_input_events() -> None:
    event = Event(type="STOP", id="MANUAL", kind="dora", value=None, metadata={})
    assert "data" not in event
    assert event.get("data", "absent") == "absent"
    try:
        event["data"]
    except KeyError:
        pass
    else:
        raise AssertionError("a STOP event has no data")
