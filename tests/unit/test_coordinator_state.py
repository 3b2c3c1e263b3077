"""What the coordinator knows about a dataflow run (``coordinator/_state.py``), without processes:
node states and when a run has started or ended, kept logs (bounded, cut, merged in arrival
order), the drop counters, and the rows and results sent to the CLI."""

from __future__ import annotations

import time

import pytest

from dora_zmq import _control as ctl
from dora_zmq.coordinator._state import (
    LOG_LINE_MAX,
    LOG_LINES_KEPT,
    DaemonRecord,
    DataflowRun,
    LogWatcher,
    NodeState,
    Status,
)
from dora_zmq.descriptor import parse_dataflow
from dora_zmq.security import TRUSTED

YAML = """
nodes:
  - id: source
    path: source.py
    inputs:
      tick: dora/timer/millis/50
    outputs: [out]
  - id: sink
    path: sink.py
    inputs:
      data: source/out
  - id: edge
    path: dynamic
    inputs:
      data: source/out
"""


@pytest.fixture
def run() -> DataflowRun:
    descriptor = parse_dataflow(YAML, check_paths=False)
    r = DataflowRun("df-1", "demo", descriptor, YAML, "/work", local=True)
    r.nodes = {"source": NodeState.SPAWNING, "sink": NodeState.SPAWNING, "edge": NodeState.WAITING}
    return r


def test_a_new_run_is_pending_with_its_own_reader_secret(run: DataflowRun) -> None:
    other = DataflowRun("df-2", "demo", run.descriptor, YAML, "/work", local=False)
    assert run.status == Status.PENDING and not run.finished
    assert len(run.reader_secret) == 64 and run.reader_secret != other.reader_secret
    assert run.ship == ctl.ShipMode.NEVER and run.bundle is None


def test_dynamic_nodes_neither_hold_the_start_nor_the_end(run: DataflowRun) -> None:
    assert run.static_nodes() == ["source", "sink"]
    assert not run.all_started()
    run.nodes["source"] = NodeState.READY
    assert not run.all_started()
    run.nodes["sink"] = NodeState.EXITED  # exited before it bound: started, for the barrier
    assert run.all_started() and not run.all_ended()
    assert run.exited() == ["sink"]
    run.nodes["source"] = NodeState.FAILED
    assert run.all_ended()  # edge is still WAITING: it does not keep the dataflow open
    assert sorted(run.exited()) == ["sink", "source"]
    run.nodes["source"] = NodeState.RESTARTING
    assert not run.all_ended()  # it will run again


@pytest.mark.parametrize(
    "status, finished",
    [
        (Status.PENDING, False),
        (Status.RUNNING, False),
        (Status.STOPPING, False),
        (Status.FINISHED, True),
        (Status.FAILED, True),
    ],
)
def test_finished_statuses(run: DataflowRun, status: str, finished: bool) -> None:
    run.status = status
    assert run.finished is finished


def test_daemons_are_the_placements(run: DataflowRun) -> None:
    assert run.daemons == set()
    run.placement = {"source": b"d1", "sink": b"d2", "edge": b"d1"}
    assert run.daemons == {b"d1", b"d2"}


def test_logs_are_kept_per_known_node_bounded_and_cut(run: DataflowRun) -> None:
    entry = run.add_log("stranger", "stdout", "not ours")
    assert entry[1:] == ("stdout", "not ours") and "stranger" not in run.logs  # returned, not kept
    long = "x" * (LOG_LINE_MAX + 10)
    _, _, cut = run.add_log("sink", "stderr", long)
    assert cut == "x" * LOG_LINE_MAX + " [... 10 characters cut]"
    for i in range(LOG_LINES_KEPT + 5):
        run.add_log("source", "stdout", f"line {i}")
    kept = run.logs["source"]
    assert len(kept) == LOG_LINES_KEPT and kept[0][2] == "line 5" and kept[-1][2] == f"line {LOG_LINES_KEPT + 4}"


def test_select_logs_merges_by_arrival_then_filters(run: DataflowRun, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([10.0, 11.0, 12.0, 13.0, 14.0])
    monkeypatch.setattr(time, "time", lambda: next(clock))
    run.add_log("source", "stdout", "s1")  # 10
    run.add_log("sink", "stdout", "k1")  # 11
    run.add_log("source", "stdout", "s2")  # 12
    run.add_log("sink", "stderr", "k2")  # 13
    every = [(n, e[2]) for n, e in run.select_logs(None, 0, 0)]
    assert every == [("source", "s1"), ("sink", "k1"), ("source", "s2"), ("sink", "k2")]
    assert [e[2] for _, e in run.select_logs("sink", 0, 0)] == ["k1", "k2"]
    assert [e[2] for _, e in run.select_logs(None, 12.0, 0)] == ["s2", "k2"]  # since is inclusive
    assert [e[2] for _, e in run.select_logs(None, 0, 3)] == ["k1", "s2", "k2"]  # the last three
    assert run.select_logs("edge", 0, 0) == []  # no lines (yet)


def test_stats_keep_declared_inputs_only(run: DataflowRun) -> None:
    run.add_stats("sink", {"data": 3, "bogus": 9, "zero": 0}, {"data": 1})
    run.add_stats("stranger", {"data": 5}, {})
    run.add_stats("edge", {"data": 0}, {"data": 2})
    assert run.drops == {"sink/data": 3}
    assert run.lost == {"sink/data": 1, "edge/data": 2}
    run.add_stats("sink", {"data": 4}, {})
    assert run.drops == {"sink/data": 4}  # the node's latest count, not a sum


def test_info_and_result_are_copies_that_survive_the_codec(run: DataflowRun) -> None:
    run.status = Status.FAILED
    run.failures.append(ctl.FailureRecord("sink", exit_code=3, stderr_tail="boom"))
    run.add_stats("sink", {"data": 2}, {"data": 1})
    run.machines = {"source": "m1"}
    run.restarts = {"source": 1}
    info = run.info()
    assert info.id == "df-1" and info.status == Status.FAILED and info.nodes == run.nodes
    assert info.nodes is not run.nodes and info.drops == {"sink/data": 2} and info.machines == {"source": "m1"}
    assert ctl.decode(ctl.encode(info)) == info
    result = run.result()
    assert not result.ok and result.failures == run.failures and result.lost == {"sink/data": 1}
    assert ctl.decode(ctl.encode(result)) == result


def test_a_run_is_ok_without_failures_and_error(run: DataflowRun) -> None:
    run.stopped = True
    assert run.result().ok and run.result().stopped
    run.pending_error = "no daemon for machine m9"
    result = run.result()
    assert not result.ok and result.error == "no daemon for machine m9"


def test_log_watchers_select_nodes() -> None:
    everything, one, results_only = LogWatcher(b"a", True), LogWatcher(b"b", True, "sink"), LogWatcher(b"c", False)
    assert everything.wants("sink") and everything.wants("source")
    assert one.wants("sink") and not one.wants("source")
    assert not results_only.wants("sink")


def test_a_daemon_record_starts_trusted_and_fresh() -> None:
    before = time.monotonic()
    d = DaemonRecord(b"id", "m1", "host", 42)
    assert d.key is TRUSTED and not d.suspect and d.node_addresses == []
    assert before <= d.last_seen <= time.monotonic() and d.connected_at >= before
    assert DaemonRecord(b"x", "m2", "h", 1).node_addresses is not d.node_addresses
