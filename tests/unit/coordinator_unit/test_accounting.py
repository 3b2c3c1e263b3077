"""Messages of an ended dataflow sent but never delivered (``coordinator._accounting``)."""

from __future__ import annotations

from pathlib import Path

from dora_zmq import _control as ctl
from dora_zmq.coordinator._accounting import undelivered
from dora_zmq.coordinator._state import DataflowRun, Status
from dora_zmq.descriptor import parse_dataflow

YAML = """
nodes:
  - id: src
    path: src.py
    inputs: {tick: dora/timer/millis/10}
    outputs: [n]
  - id: sink
    path: sink.py
    inputs: {n: src/n}
"""


def _run(sent: int, received: int, queued: int = 0, lost: int = 0, drops: int = 0) -> DataflowRun:
    descriptor = parse_dataflow(YAML, working_dir=Path("."), check_paths=False)
    run = DataflowRun("df", "df", descriptor, YAML, ".", False)
    run.nodes = {"src": "exited", "sink": "exited"}
    run.status = Status.FINISHED
    run.stats["src"] = ctl.NodeStats("df", "src", {}, {}, {"tick": 999}, {"n": sent}, {})
    run.stats["sink"] = ctl.NodeStats("df", "sink", {"n": drops}, {"n": lost}, {"n": received}, {}, {"n": queued})
    return run


def test_what_the_code_never_got_is_undelivered() -> None:
    # 100 sent: 90 queued (5 of them dropped, 10 still waiting at its close), 4 lost in transit
    run = _run(sent=100, received=90, queued=10, lost=4, drops=5)
    # handed to the code: 90 - 10 - 5 = 75; 75 + 5 dropped + 4 lost + 16 undelivered == 100
    assert undelivered(run) == {"sink/n": 16}


def test_nothing_when_it_adds_up_or_runs_or_a_node_restarted() -> None:
    assert undelivered(_run(sent=100, received=96, lost=4)) == {}
    running = _run(sent=100, received=50)
    running.status = Status.RUNNING
    assert undelivered(running) == {}  # in flight is not undelivered yet
    restarted = _run(sent=100, received=50)
    restarted.restarts["src"] = 1
    assert undelivered(restarted) == {}


def test_the_exit_report_count_wins_over_the_last_stats() -> None:
    run = _run(sent=80, received=90)
    run.exit_notices["src"] = ctl.UpstreamExited("df", "src", False, "", {"n": 100})
    assert undelivered(run) == {"sink/n": 10}
