"""Lifecycle of a dataflow with real processes: start barrier, INPUT_CLOSED, crashes, paths,
timers and queue_size (issue 2, "Lifecycle").

Every test runs ``dora-zmq run`` on a YAML written into ``tmp_path`` with node scripts from
``tests/e2e/flows``; nodes print ``EVENT {json}`` lines that the tests parse.
"""

from __future__ import annotations

import json
import signal
import statistics
import sys
from pathlib import Path

import pytest

from dora_zmq.testing import node_events, write_dataflow

FLOWS = Path(__file__).resolve().parent / "flows"


def _scripts(*names: str) -> list[Path]:
    return [FLOWS / n for n in names]


def _inputs(events: list[dict]) -> list[tuple[str, list]]:
    return [(e["id"], e["value"]) for e in events if e["type"] == "INPUT"]


# ---- start barrier -------------------------------------------------------------------------


@pytest.mark.timeout(45)
def test_start_barrier_first_message_of_every_output_reaches_every_subscriber(dora, tmp_path: Path) -> None:
    """One message per output, sent right after Node(), is not lost, even by a late subscriber."""
    yml = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: source
            path: burst.py
            outputs: [a, b, c]
          - id: early
            path: recorder.py
            inputs: {a: source/a, b: source/b, c: source/c}
          - id: late
            path: recorder.py
            env: {SLOW_START_S: 1}
            inputs: {a: source/a, b: source/b, c: source/c}
          - id: partial
            path: recorder.py
            inputs: {only_b: source/b}
        """,
        copy=_scripts("burst.py", "recorder.py"),
    )
    for attempt in range(3):
        result = dora("run", str(yml)).wait(30)
        assert result.returncode == 0, f"attempt {attempt}:\n{result.output}"
        for sink in ("early", "late"):
            got = sorted(_inputs(node_events(result.stdout, sink)))
            assert got == [("a", [0]), ("b", [0]), ("c", [0])], f"attempt {attempt}, {sink}:\n{result.output}"
        assert _inputs(node_events(result.stdout, "partial")) == [("only_b", [0])], result.output


# ---- INPUT_CLOSED after the last message ----------------------------------------------------


def test_input_closed_comes_after_the_last_message_then_stop_then_end(dora, tmp_path: Path) -> None:
    yml = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: source
            path: burst.py
            outputs: [numbers]
            env: {COUNT: 200}
          - id: sink
            path: recorder.py
            inputs:
              numbers: {source: source/numbers, queue_size: 1000}
        """,
        copy=_scripts("burst.py", "recorder.py"),
    )
    result = dora("run", str(yml)).wait(30)
    assert result.returncode == 0, result.output
    events = node_events(result.stdout, "sink")
    values = [e["value"][0] for e in events if e["type"] == "INPUT"]
    assert values == list(range(200)), result.output
    assert all(e["metadata"]["seq"] == e["value"][0] for e in events if e["type"] == "INPUT")
    tail = [(e["type"], e["id"]) for e in events[200:]]
    assert tail == [("INPUT_CLOSED", "numbers"), ("STOP", "ALL_INPUTS_CLOSED")], result.output
    # recorder.py asserts next() keeps returning None after the stream ended, then prints END.
    assert "sink END after 200 inputs" in result.stdout
    assert "failed" not in result.stderr


# ---- crashes ---------------------------------------------------------------------------------


def test_crashing_node_fails_the_dataflow_and_downstream_sees_node_failed(dora, tmp_path: Path) -> None:
    yml = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: crasher
            path: burst.py
            outputs: [out]
            env: {COUNT: 2, FINISH: raise}
          - id: sink
            path: recorder.py
            inputs: {x: crasher/out}
        """,
        copy=_scripts("burst.py", "recorder.py"),
    )
    result = dora("run", str(yml)).wait(30)
    assert result.returncode == 1, result.output
    events = node_events(result.stdout, "sink")
    kinds = [(e["type"], e["id"]) for e in events]
    assert kinds == [
        ("INPUT", "x"),
        ("INPUT", "x"),
        ("NODE_FAILED", "crasher"),
        ("INPUT_CLOSED", "x"),
        ("STOP", "ALL_INPUTS_CLOSED"),
    ], result.output
    assert "boom-42" in events[2]["error"]
    # The report names the node, its exit code and shows the exception from its stderr.
    assert "node 'crasher' failed (exit code 1)" in result.output
    assert "RuntimeError: burst failed on purpose: boom-42" in result.stderr
    assert "sink END after 2 inputs" in result.stdout  # downstream ended cleanly


def test_node_killed_by_a_signal_closes_downstream_inputs_after_its_data(dora, tmp_path: Path) -> None:
    """SIGKILL leaves no in-band end-of-stream: the control plane closes the input instead."""
    yml = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: victim
            path: burst.py
            outputs: [out]
            inputs: {ack: sink/ack}
            env: {COUNT: 3, WAIT_INPUT: 1, FINISH: sigkill}
          - id: sink
            path: recorder.py
            inputs: {x: victim/out}
            outputs: [ack]
            env: {ACK_OUTPUT: ack, ACK_AFTER: 3}
        """,
        copy=_scripts("burst.py", "recorder.py"),
    )
    result = dora("run", str(yml)).wait(30)
    assert result.returncode == 1, result.output
    events = node_events(result.stdout, "sink")
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["INPUT"] * 3, result.output
    assert kinds[-2:] == ["INPUT_CLOSED", "STOP"], result.output
    assert set(kinds[3:-2]) <= {"NODE_FAILED"}, result.output
    assert "node 'victim' failed (killed by signal 9)" in result.output
    assert "killed by signal SIGKILL" in result.output


# ---- paths -------------------------------------------------------------------------------------


def test_paths_are_relative_to_the_yaml_and_non_python_executables_run_directly(dora, tmp_path: Path) -> None:
    flow = tmp_path / "project"
    yml = write_dataflow(
        flow,
        """
        nodes:
          - id: shell
            path: nodes/hello.sh
            args: one two
            outputs: [never]
          - id: python
            path: nodes/where.py
            inputs: {x: shell/never}
        """,
        files={
            "nodes/hello.sh": """
                #!/bin/sh
                echo "hello from sh $1 $2 in $(pwd)"
            """,
            "nodes/where.py": """
                import json, os, sys
                from dora_zmq import Node
                node = Node()
                print("WHERE " + json.dumps({"exe": sys.executable, "cwd": os.getcwd()}), flush=True)
                for event in node:
                    print("EVENT " + json.dumps({"type": event["type"], "id": event["id"]}), flush=True)
            """,
        },
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = dora("run", "../project/dataflow.yml", cwd=elsewhere).wait(30)
    assert result.returncode == 0, result.output
    assert f"shell hello from sh one two in {flow}" in result.stdout
    where = next(line for line in result.stdout.splitlines() if line.startswith("python WHERE "))
    assert f'"exe": "{sys.executable}"' in where, where  # the interpreter running dora-zmq
    assert f'"cwd": "{flow}"' in where, where
    # The shell script never publishes; its (clean) exit closes the input, without NODE_FAILED.
    kinds = [(e["type"], e["id"]) for e in node_events(result.stdout, "python")]
    assert kinds == [("INPUT_CLOSED", "x"), ("STOP", "ALL_INPUTS_CLOSED")], result.output
    assert (flow / "out").is_dir()  # logs are written next to the YAML, not in the cwd
    assert not (elsewhere / "out").exists()
    assert yml.exists()


def test_a_program_that_never_calls_node_does_not_hold_unrelated_nodes(dora, tmp_path: Path) -> None:
    """Each node starts once its own upstreams are bound: a plain program delays only the nodes
    it feeds (none here), and run names it."""
    yml = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: tool
            path: tool.sh
          - id: sink
            path: recorder.py
            inputs: {tick: dora/timer/millis/20}
        """,
        copy=_scripts("recorder.py"),
        files={
            # Ends when the warning is out (no sleep-based sync): it waits for a file the test writes.
            "tool.sh": """
                #!/bin/sh
                echo "tool: working"
                while [ ! -e release ]; do sleep 0.05; done
                echo "tool: done"
            """,
        },
    )
    p = dora("run", str(yml), env={"DORA_ZMQ_START_WARN": "0.5"})
    p.wait_for_line(r"^sink READY$")  # while the tool still runs
    p.wait_for_line(r"^tool .*node 'tool' has not called Node\(\)")
    (tmp_path / "release").touch()
    p.wait_for_line(r"^tool tool: done$")
    p.send_signal(signal.SIGINT)
    result = p.wait(20)
    assert result.returncode == 0, result.output
    assert "tool tool: done" in result.stdout


# ---- timers ------------------------------------------------------------------------------------


def test_timers_tick_at_their_period(dora, tmp_path: Path) -> None:
    periods = {"millis": 0.020, "hz": 0.100, "secs": 0.250}
    yml = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: counter
            path: timers.py
            env: {DURATION_S: 1.5}
            inputs:
              millis: dora/timer/millis/20
              hz: dora/timer/hz/10
              secs: dora/timer/secs/0.25
        """,
        copy=_scripts("timers.py"),
    )
    result = dora("run", str(yml)).wait(30)
    assert result.returncode == 0, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith("counter TICKS "))
    ticks = json.loads(line.split("TICKS ", 1)[1])
    for input_id, period in periods.items():
        times = ticks.get(input_id, [])
        assert len(times) >= 4, (input_id, line)
        # The median interval ignores the odd tick a loaded machine delays (or skips), yet a timer
        # at half or double speed is off by 100 % or 50 %, far outside these 20 %.
        median = statistics.median(b - a for a, b in zip(times, times[1:]))
        assert abs(median - period) <= 0.2 * period, (input_id, median, line)


# ---- queue_size ------------------------------------------------------------------------------


def test_queue_size_keeps_the_newest_and_reports_drops(dora, tmp_path: Path) -> None:
    yml = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: fast
            path: burst.py
            outputs: [numbers]
            env: {COUNT: 500}
          - id: slow
            path: recorder.py
            env: {SLEEP_S: 0.05}
            inputs:
              numbers: {source: fast/numbers, queue_size: 2}
        """,
        copy=_scripts("burst.py", "recorder.py"),
    )
    result = dora("run", str(yml)).wait(40)
    assert result.returncode == 0, result.output
    values = [e["value"][0] for e in node_events(result.stdout, "slow") if e["type"] == "INPUT"]
    assert 1 <= len(values) <= 100, values
    assert values == sorted(values), values  # in order
    assert values[-1] == 499, values  # keep-newest: the last message always survives
    dropped = 500 - len(values)
    # The node's own log says so, and so does the run's summary.
    assert f"input numbers dropped {dropped} message(s) (queue_size full)" in result.output
    assert f"messages dropped (queue_size full): slow/numbers: {dropped}" in result.stderr
    log_files = list((tmp_path / "out").glob("*/log_slow.txt"))
    assert len(log_files) == 1 and "queue_size full" in log_files[0].read_text()
