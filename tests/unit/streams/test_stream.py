"""Stream: depth checks, drop-oldest, the poison pill, close on a full stream."""

from __future__ import annotations

import queue
import threading

import pytest

from dora_zmq import DoraZmqError
from dora_zmq.streams import Stream, StreamConfigError

pytestmark = pytest.mark.timeout(5)


class TestConstruction:
    def test_defaults(self) -> None:
        stream = Stream()
        assert stream.maxsize == 0
        assert stream.allow_drop is False
        assert stream.dropped_cnt == 0

    def test_min_queue_size_is_one(self) -> None:
        assert Stream.min_queue_size == 1
        assert Stream(1).maxsize == 1

    def test_negative_depth_rejected(self) -> None:
        with pytest.raises(StreamConfigError, match="incorrect stream depth -1"):
            Stream(-1)

    def test_depth_below_min_queue_size_rejected(self) -> None:
        class RoomyStream(Stream):
            min_queue_size = 3

        with pytest.raises(StreamConfigError, match="at least 3"):
            RoomyStream(2)
        assert RoomyStream(0).maxsize == 0
        assert RoomyStream(3).maxsize == 3

    def test_config_error_is_value_error_and_dora_error(self) -> None:
        with pytest.raises(ValueError):
            Stream(-5)
        with pytest.raises(DoraZmqError):
            Stream(-5)

    def test_repr(self) -> None:
        assert "allow_drop=True" in repr(Stream(2, allow_drop=True))


class TestPut:
    def test_fifo_order(self) -> None:
        stream = Stream()
        for i in range(3):
            stream.put(i)
        assert [stream.get() for _ in range(3)] == [0, 1, 2]

    def test_drop_oldest_when_full(self) -> None:
        stream = Stream(2, allow_drop=True)
        for i in range(5):
            stream.put(i)
        assert stream.dropped_cnt == 3
        assert [stream.get_nowait(), stream.get_nowait()] == [3, 4]

    def test_dropping_put_never_blocks(self) -> None:
        stream = Stream(1, allow_drop=True)
        stream.put("a")
        stream.put("b", block=True, timeout=None)
        assert stream.get_nowait() == "b"

    def test_full_non_dropping_nonblocking_put_raises(self) -> None:
        stream = Stream(1)
        stream.put("a")
        with pytest.raises(queue.Full):
            stream.put("b", block=False)
        assert stream.dropped_cnt == 0

    def test_full_non_dropping_put_times_out(self) -> None:
        stream = Stream(1)
        stream.put("a")
        with pytest.raises(queue.Full):
            stream.put("b", timeout=0.01)

    def test_unlimited_stream_never_drops(self) -> None:
        stream = Stream(0, allow_drop=True)
        for i in range(100):
            stream.put(i)
        assert stream.qsize() == 100
        assert stream.dropped_cnt == 0

    def test_drop_never_evicts_a_queued_pill(self) -> None:
        stream = Stream(2, allow_drop=True)
        stream.put("a")
        stream.close()
        stream.put("b")  # evicts "a", not the pill
        stream.put("c")  # evicts "b"
        assert stream.dropped_cnt == 2
        assert list(stream) == []  # the pill comes first: the stream is over

    def test_put_into_full_closed_stream_is_dropped(self) -> None:
        stream = Stream(1, allow_drop=True)
        stream.close()
        stream.put("late")
        assert stream.dropped_cnt == 1
        assert stream.get_nowait() is Stream._poison

    def test_task_accounting_survives_drops(self) -> None:
        stream = Stream(1, allow_drop=True)
        stream.put("a")
        stream.put("b")
        stream.get_nowait()
        stream.task_done()
        stream.join()  # would hang if the dropped item were still counted as unfinished


class TestPoisonAndIteration:
    def test_poison_is_none_as_in_degirum(self) -> None:
        assert Stream._poison is None
        assert Stream()._poison is None

    def test_iteration_stops_at_poison_and_consumes_it(self) -> None:
        stream = Stream()
        for i in range(3):
            stream.put(i)
        stream.close()
        stream.put("after")
        assert list(stream) == [0, 1, 2]
        assert stream.get_nowait() == "after"

    def test_none_ends_iteration(self) -> None:
        stream = Stream()
        stream.put(1)
        stream.put(None)
        stream.put(2)
        assert list(stream) == [1]

    def test_iteration_compares_by_identity(self) -> None:
        class NoEquality:
            def __eq__(self, other: object) -> bool:
                raise AssertionError("compared with ==")

            __hash__ = object.__hash__

        item = NoEquality()
        stream = Stream()
        stream.put(item)
        stream.close()
        assert list(stream) == [item]

    def test_iteration_from_another_thread(self) -> None:
        stream = Stream()
        received: list[int] = []
        reader = threading.Thread(target=lambda: received.extend(stream))
        reader.start()
        for i in range(10):
            stream.put(i)
        stream.close()
        reader.join(timeout=2)
        assert not reader.is_alive()
        assert received == list(range(10))


class TestClose:
    def test_close_on_full_stream_does_not_block_and_drops_oldest(self) -> None:
        stream = Stream(2)
        stream.put("a")
        stream.put("b")
        stream.close()
        assert stream.dropped_cnt == 1
        assert list(stream) == ["b"]

    def test_close_on_full_dropping_stream(self) -> None:
        stream = Stream(1, allow_drop=True)
        stream.put("a")
        stream.close()
        assert stream.dropped_cnt == 1
        assert list(stream) == []

    def test_close_twice_on_full_stream_keeps_one_pill(self) -> None:
        stream = Stream(1)
        stream.close()
        stream.close()
        assert stream.qsize() == 1
        assert stream.dropped_cnt == 0

    def test_close_wakes_blocked_reader(self) -> None:
        stream = Stream()
        got: list[object] = []
        reader = threading.Thread(target=lambda: got.append(list(stream)))
        reader.start()
        stream.close()
        reader.join(timeout=2)
        assert not reader.is_alive()
        assert got == [[]]


class TestForceClose:
    def test_force_close_empties_and_ignores_later_puts(self) -> None:
        stream = Stream(3)
        for item in "abc":
            stream.put(item)
        stream.close(force=True)
        stream.put("late")
        assert stream.qsize() == 1 and list(stream) == []
        assert stream.dropped_cnt == 0

    def test_force_close_wakes_blocked_producer_without_its_item(self) -> None:
        stream = Stream(1)
        stream.put("a")
        producer = threading.Thread(target=stream.put, args=("blocked",))
        producer.start()
        stream.close(force=True)
        producer.join(timeout=2)
        assert not producer.is_alive()
        assert list(stream) == []

    def test_taking_back_into_use_reopens(self) -> None:
        stream = Stream()
        stream.close(force=True)
        stream.abandon(False)
        stream.get_nowait()
        stream.put(1)
        stream.close()
        assert list(stream) == [1]


class TestAbandon:
    def test_abandoned_stream_discards_without_counting(self) -> None:
        stream = Stream(1)
        stream.put("queued")
        assert not stream.abandoned
        stream.abandon()
        assert stream.abandoned
        assert stream.empty()
        stream.put("late")  # would block on a full stream; discarded instead
        stream.put("later", block=False)
        stream.close()
        assert stream.empty()
        assert stream.dropped_cnt == 0

    def test_abandon_wakes_blocked_producer(self) -> None:
        stream = Stream(1)
        stream.put("a")
        blocked = threading.Thread(target=stream.put, args=("b",))
        blocked.start()
        stream.abandon()
        blocked.join(timeout=2)
        assert not blocked.is_alive()

    def test_taking_back_into_use(self) -> None:
        stream = Stream(1, allow_drop=True)
        stream.abandon()
        stream.abandon(False)
        stream.put("x")
        assert stream.get_nowait() == "x"


class TestClear:
    def test_clear_discards_everything(self) -> None:
        stream = Stream()
        stream.put(1)
        stream.close()
        assert stream.clear() == 2
        assert stream.empty()

    def test_clear_wakes_blocked_producer(self) -> None:
        stream = Stream(1)
        stream.put("a")
        blocked = threading.Thread(target=stream.put, args=("b",))
        blocked.start()
        blocked.join(timeout=0.05)
        assert blocked.is_alive()  # really blocked on the full stream
        stream.clear()
        blocked.join(timeout=2)
        assert not blocked.is_alive()
        assert stream.get_nowait() == "b"
