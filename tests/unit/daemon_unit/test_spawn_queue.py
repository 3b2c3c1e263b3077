"""The daemon's spawn queue: at least one node per pass, no more than a slice of time, in
arrival order, and a stopping dataflow's unstarted nodes handed back."""

from __future__ import annotations

import time

from dora_zmq.daemon._spawning import SpawnQueue


def test_one_node_per_pass_at_least_and_arrival_order() -> None:
    q = SpawnQueue()
    q.add("a", ["a1", "a2"])
    q.add("b", ["b1"])
    q.add("c", [])  # nothing to start: no entry
    assert not q.pending("c")
    taken = []
    for item in q.due(0.0):  # a zero slice still starts one
        taken.append(item)
    assert taken == [("a", "a1")]
    assert [*q.due(10.0)] == [("a", "a2"), ("b", "b1")]
    assert not q and not q.pending("a")


def test_a_pass_stops_after_its_slice() -> None:
    q = SpawnQueue()
    q.add("a", [f"n{i}" for i in range(100)])
    started = 0
    for _ in q.due(0.02):
        started += 1
        time.sleep(0.005)  # a slow spawn
    assert 1 <= started < 100
    assert q.pending("a")


def test_a_stopping_dataflow_gets_its_unstarted_nodes_back() -> None:
    q = SpawnQueue()
    q.add("a", ["a1", "a2", "a3"])
    next(iter(q.due()))
    assert q.drop("a") == ["a2", "a3"]
    assert not q.pending("a") and not q
    assert q.drop("a") == []
