"""A `dora-zmq stop` while the source's host is cut off (issue 13, defect 3): the stop ends in time.

Hosts are network namespaces on a bridge (skipped without root). The coordinator, the sink and
the CLI are on h1; the source on h2, whose cable is pulled. The liveness timeouts are raised so
that the cut daemon is not declared lost meanwhile: what must end the stop is its own deadline
(``contract.stop_bound``), not the daemon's liveness.

* ``outlasting``: h2 stays cut for longer than the stop's bound. Before the fix the dataflow
  stayed ``stopping`` until the cut ended, and ``start --attach`` with it (for good if the
  exit report was never sent again). Now the stop ends at the bound: the attached CLI exits
  non-zero naming the source, its machine and why (daemon unreachable); `list` shows the node
  ``unconfirmed``. Once h2 is back, its daemon is told to stop the source again (the first
  STOP was lost with the connection), the source's real exit updates the record, and the
  dataflow stays ended.
* ``short``: a 5 s cut while the source is ending on its own, then `stop` (the scenario of the
  issue). The exit report is sent again after the link returns, within the bound: the stop
  ends with every exit confirmed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from dora_zmq._control.contract import stop_bound

from .cluster import Cluster, write_files
from .test_stream_end_cut import SINK, SOURCE

pytestmark = pytest.mark.netns

FLOW = """
nodes:
  - id: source
    path: source.py
    deploy: {machine: h2}
    inputs: {tick: dora/timer/millis/10}
    outputs: [n]
  - id: sink
    path: sink.py
    deploy: {machine: h1}
    inputs: {n: {source: source/n, queue_size: 1000}}
"""

GRACE_S = 1.0
# The coordinator ends a stopping dataflow at the first pass of its loop (every 100 ms) after
# the bound; the slack is for a loaded machine (several test suites share 2 cores).
SLACK_S = 2.0


def _cluster(network: Any, dora: Any, tmp_path: Path, limit: int) -> tuple[Cluster, Any, Any]:
    h1, h2 = network.add_host("h1"), network.add_host("h2")
    source = SOURCE.replace("if sent == 250:", f"if sent == {limit}:")
    write_files(tmp_path, {"source.py": source, "sink.py": SINK, "dataflow.yml": FLOW})
    # The cut daemon must outlive the cut: only the stop's deadline may end the stop.
    env = {"DORA_ZMQ_DAEMON_TIMEOUT": "60", "DORA_ZMQ_DAEMON_HUNG_TIMEOUT": "120"}
    cluster = Cluster(network, dora, tmp_path, env=env)
    cluster.start_coordinator(h1)
    cluster.start_daemon(h1)
    cluster.start_daemon(h2)
    return cluster, h1, h2


def _start_cut_stop(
    cluster: Cluster, network: Any, h1: Any, h2: Any, name: str, grace: float
) -> tuple[Any, float, float]:
    """Start attached, cut h2 once the sink has data, `stop`: the attached CLI, when h2 was cut
    (monotonic) and when the coordinator had had the stop (Unix time the `stop` command
    returned: a CLI process takes up to seconds to start on a loaded machine, and the bound
    counts from the coordinator's receipt)."""
    run = cluster.cli(h1, "start", "dataflow.yml", "--attach", "--name", name)
    run.wait_for_line(r"sink got 20", timeout=120)
    network.cut(h2)
    cut_at = time.monotonic()
    stopped = cluster.cli(h1, "stop", name, "--grace-duration", f"{grace:g}s").wait(60)
    assert stopped.returncode == 0, stopped.output
    return run, cut_at, time.time()


def _ended_in_bound(
    cluster: Cluster, h1: Any, run: Any, asked: float, grace: float, what: str
) -> tuple[Any, dict[str, Any]]:
    """The attached CLI's result and the dataflow's row, once it checked that the coordinator
    ended the dataflow within the stop's bound (its ``ended_at``)."""
    result = run.wait(stop_bound(grace) + 60)  # it exits once told (seconds late on a loaded machine)
    row = _listed(cluster, h1)
    took = row["ended_at"] - asked
    print(f"{what}: ended {took:.1f} s after `stop` (bound {stop_bound(grace):g} s)")
    assert took < stop_bound(grace) + SLACK_S, (took, result.output)
    return result, row


def _listed(cluster: Cluster, h1: Any) -> dict[str, Any]:
    listed = cluster.cli(h1, "list", "--format", "json").wait(60)  # a CLI process: seconds on a loaded machine
    runs = json.loads(listed.stdout)["dataflows"]
    assert len(runs) == 1, listed.output
    return runs[0]  # type: ignore[no-any-return]


def _wait_listed(cluster: Cluster, h1: Any, check: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        row = _listed(cluster, h1)
        if check(row) or time.monotonic() > deadline:
            return row
        time.sleep(0.5)  # polling `list` (a CLI process each time): nothing to wait on here


@pytest.mark.timeout(300)
def test_stop_ends_at_its_bound_while_a_host_is_cut(network, dora, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cluster, h1, h2 = _cluster(network, dora, tmp_path, limit=10**9)  # the source runs until stopped
    try:
        run, _, asked = _start_cut_stop(cluster, network, h1, h2, "cut", GRACE_S)
        result, row = _ended_in_bound(cluster, h1, run, asked, GRACE_S, "stop with h2 cut")
        assert result.returncode != 0, result.output
        text = result.stderr
        assert "node 'source' on machine 'h2': daemon unreachable" in text, result.output
        assert row["status"] == "failed", row
        assert row["nodes"]["source"] == "unconfirmed", row
        [failure] = [f for f in row["failures"] if f["node"] == "source"]
        assert failure["machine"] == "h2" and "daemon unreachable" in failure["reason"], row
        assert row["nodes"]["sink"] in ("exited", "failed"), row  # stopped (killed if STOP took longer than the grace)
    finally:
        network.restore(h2)
    # Back: h2's daemon is told again to stop the source; its real exit is recorded, the
    # dataflow stays ended.
    row = _wait_listed(cluster, h1, lambda r: r["nodes"]["source"] != "unconfirmed", timeout=40)
    assert row["nodes"]["source"] in ("exited", "failed"), row
    assert row["status"] == "failed", row
    [failure] = [f for f in row["failures"] if f["node"] == "source"]
    assert "reported" in failure["reason"] and "after the deadline" in failure["reason"], row
    print(f"after the cut: {row['nodes']}, {failure['reason']}")


@pytest.mark.timeout(300)
def test_stop_after_a_short_cut_over_the_end_confirms_every_exit(network, dora, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # the bound (15 s) outlasts the 5 s cut and the reconnection after it (only the sink runs: it stops at once)
    grace = 8.0
    cluster, h1, h2 = _cluster(network, dora, tmp_path, limit=250)  # ends 2.5 s after its start
    try:
        run, cut_at, asked = _start_cut_stop(cluster, network, h1, h2, "short", grace)
        time.sleep(max(0.0, 5.0 - (time.monotonic() - cut_at)))  # the outage itself, not a synchronisation
    finally:
        network.restore(h2)
    result, row = _ended_in_bound(cluster, h1, run, asked, grace, "stop over a 5 s cut")
    assert result.returncode == 0, result.output
    assert row["status"] == "finished" and set(row["nodes"].values()) == {"exited"}, row
