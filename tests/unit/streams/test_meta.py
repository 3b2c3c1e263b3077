"""StreamMeta and StreamData: tagging, lookup, removal, cloning, records."""

from __future__ import annotations

import json
import logging

import pytest

from dora_zmq import DoraZmqError, ProtocolError
from dora_zmq.streams import StreamData, StreamMeta

pytestmark = pytest.mark.timeout(5)


class TestStreamMetaConstruction:
    def test_empty_by_default(self) -> None:
        meta = StreamMeta()
        assert len(meta) == 0
        assert list(meta) == []

    def test_initial_object_with_one_tag(self) -> None:
        meta = StreamMeta({"w": 640}, "Resize")
        assert len(meta) == 1
        assert meta.find("Resize") == [{"w": 640}]

    def test_initial_object_with_tag_list(self) -> None:
        meta = StreamMeta("info", ["a", "b"])
        assert meta.find("a") == ["info"]
        assert meta.find("b") == ["info"]

    def test_initial_object_without_tags_is_kept(self) -> None:
        meta = StreamMeta("untagged")
        assert len(meta) == 1
        assert list(meta) == [("untagged", [])]

    def test_none_initial_meta_means_empty(self) -> None:
        assert len(StreamMeta(None, "x")) == 0


class TestAppendAndFind:
    def test_find_returns_objects_in_append_order(self) -> None:
        meta = StreamMeta()
        meta.append(1, "t")
        meta.append(2, "other")
        meta.append(3, ["t", "other"])
        assert meta.find("t") == [1, 3]
        assert meta.find("other") == [2, 3]

    def test_find_unknown_tag_is_empty(self) -> None:
        assert StreamMeta(1, "t").find("nope") == []

    def test_find_last(self) -> None:
        meta = StreamMeta()
        meta.append("first", "Inference")
        meta.append("second", "Inference")
        assert meta.find_last("Inference") == "second"

    def test_find_last_unknown_tag_is_none(self) -> None:
        assert StreamMeta(1, "t").find_last("nope") is None

    def test_duplicate_tags_do_not_duplicate_results(self) -> None:
        meta = StreamMeta()
        meta.append("x", ["t", "t"])
        assert meta.find("t") == ["x"]

    def test_tuple_of_tags_accepted(self) -> None:
        meta = StreamMeta()
        meta.append("x", ("a", "b"))
        assert meta.find("b") == ["x"]

    def test_objects_stored_by_reference(self) -> None:
        obj: dict[str, list[int]] = {"boxes": []}
        meta = StreamMeta(obj, "t")
        assert meta.find_last("t") is obj

    def test_any_hashable_tag_as_in_degirum(self) -> None:
        meta = StreamMeta()
        meta.append("x", 1)
        meta.append("y", ["ok", 2])
        assert meta.find(1) == ["x"] and meta.find(2) == ["y"] and meta.find("ok") == ["y"]
        assert meta.to_records() == [{"tags": [], "meta": "x"}, {"tags": ["ok"], "meta": "y"}]

    def test_unhashable_tag_rejected(self) -> None:
        with pytest.raises(TypeError, match="must be hashable"):
            StreamMeta().append("x", [["nested"]])


class TestRemoveLast:
    def test_removes_most_recent_with_tag(self) -> None:
        meta = StreamMeta()
        meta.append(1, "t")
        meta.append(2, "t")
        meta.remove_last("t")
        assert meta.find("t") == [1]
        assert meta.find_last("t") == 1

    def test_object_keeps_its_other_tags_and_place(self) -> None:
        meta = StreamMeta()
        meta.append("a", "x")
        meta.append("b", ["x", "y"])
        meta.remove_last("y")
        assert meta.find("x") == ["a", "b"]  # as in DeGirum's toolkit: only the label "y" goes
        assert meta.find("y") == []
        assert meta.find_last("y") is None
        assert list(meta) == [("a", ["x"]), ("b", ["x"])]
        assert meta.get(1) == "b"

    def test_removing_twice_walks_back(self) -> None:
        meta = StreamMeta()
        meta.append("a", ["x", "y"])
        meta.append("b", "y")
        meta.append("c", ["x", "y"])
        meta.remove_last("y")
        meta.remove_last("y")
        assert meta.find_last("y") == "a"
        assert meta.find("x") == ["a", "c"]

    def test_clone_is_not_affected(self) -> None:
        meta = StreamMeta("a", ["x", "y"])
        twin = meta.clone()
        twin.remove_last("y")
        assert meta.find("y") == ["a"] and list(meta) == [("a", ["x", "y"])]
        assert twin.find("y") == [] and list(twin) == [("a", ["x"])]

    def test_unknown_tag_is_a_no_op(self) -> None:
        meta = StreamMeta(1, "t")
        meta.remove_last("nope")
        assert meta.find("t") == [1]


class TestClone:
    def test_clone_has_same_entries(self) -> None:
        meta = StreamMeta(1, "a")
        meta.append(2, ["a", "b"])
        twin = meta.clone()
        assert list(twin) == list(meta)
        assert twin.find("a") == [1, 2]

    def test_clone_is_independent(self) -> None:
        meta = StreamMeta(1, "a")
        twin = meta.clone()
        twin.append(2, "a")
        twin.remove_last("a")
        twin.remove_last("a")
        assert meta.find("a") == [1]
        assert twin.find("a") == []

    def test_original_changes_do_not_reach_clone(self) -> None:
        meta = StreamMeta(1, "a")
        twin = meta.clone()
        meta.append(2, "a")
        assert twin.find("a") == [1]

    def test_clone_is_shallow(self) -> None:
        obj = [1, 2]
        twin = StreamMeta(obj, "a").clone()
        assert twin.find_last("a") is obj


class TestDunder:
    def test_len_and_iter_pairs_in_order(self) -> None:
        meta = StreamMeta()
        meta.append("a", "x")
        meta.append("b", ["y", "z"])
        meta.append("c")
        assert len(meta) == 3
        assert list(meta) == [("a", ["x"]), ("b", ["y", "z"]), ("c", [])]

    def test_repr_mentions_tags_and_objects(self) -> None:
        text = repr(StreamMeta({"k": 1}, "tag"))
        assert "tag" in text and "'k'" in text


class TestRecords:
    def test_to_records_is_json_serialisable(self) -> None:
        meta = StreamMeta({"w": 640}, "Resize")
        meta.append([1, 2.5, None, "s"], ["Inference", "Detection"])
        meta.append("plain")
        records = meta.to_records()
        assert records == [
            {"tags": ["Resize"], "meta": {"w": 640}},
            {"tags": ["Inference", "Detection"], "meta": [1, 2.5, None, "s"]},
            {"tags": [], "meta": "plain"},
        ]
        json.dumps(records)

    def test_to_records_keeps_objects_as_is(self) -> None:
        obj = {"a": [1]}
        assert StreamMeta(obj, "t").to_records()[0]["meta"] is obj

    def test_unserialisable_objects_skipped_with_debug_log(self, caplog: pytest.LogCaptureFixture) -> None:
        meta = StreamMeta(object(), "opaque")
        meta.append({"ok": True}, "fine")
        meta.append({"nested": {1, 2}}, "set")
        with caplog.at_level(logging.DEBUG, logger="dora_zmq.streams"):
            records = meta.to_records()
        assert records == [{"tags": ["fine"], "meta": {"ok": True}}]
        skipped = [r for r in caplog.records if "not JSON-serialisable" in r.getMessage()]
        assert len(skipped) == 2
        assert all(r.levelno == logging.DEBUG for r in skipped)

    def test_round_trip_through_json(self) -> None:
        meta = StreamMeta({"w": 640}, "Resize")
        meta.append({"boxes": [[1, 2, 3, 4]]}, ["Inference", "Detection"])
        back = StreamMeta.from_records(json.loads(json.dumps(meta.to_records())))
        assert list(back) == list(meta)
        assert back.find_last("Detection") == {"boxes": [[1, 2, 3, 4]]}

    def test_from_empty_records(self) -> None:
        assert len(StreamMeta.from_records([])) == 0

    @pytest.mark.parametrize(
        "records",
        [
            [["not", "a", "mapping"]],
            [{"meta": 1}],
            [{"tags": []}],
            [{"tags": "t", "meta": 1}],
            [{"tags": ["ok", 3], "meta": 1}],
        ],
    )
    def test_malformed_records_raise_protocol_error(self, records: list[object]) -> None:
        with pytest.raises(ProtocolError, match="record 0"):
            StreamMeta.from_records(records)  # type: ignore[arg-type]

    def test_protocol_error_is_a_dora_error(self) -> None:
        with pytest.raises(DoraZmqError):
            StreamMeta.from_records([{"meta": 1}])


class TestStreamData:
    def test_holds_data_and_meta(self) -> None:
        meta = StreamMeta(1, "t")
        item = StreamData("payload", meta)
        assert item.data == "payload"
        assert item.meta is meta

    def test_default_meta_is_fresh_for_each_element(self) -> None:
        first, second = StreamData(1), StreamData(2)
        first.append_meta("x", "t")
        assert first.meta is not second.meta
        assert len(second.meta) == 0

    def test_append_meta(self) -> None:
        item = StreamData(1)
        item.append_meta("info", ["a", "b"])
        item.append_meta("more")
        assert item.meta.find_last("b") == "info"
        assert len(item.meta) == 2

    def test_repr(self) -> None:
        assert repr(StreamData(7)).startswith("StreamData(7, StreamMeta(")
