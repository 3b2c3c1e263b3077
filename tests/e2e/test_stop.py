"""Stopping a running dataflow: Ctrl-C, SIGTERM, the grace ladder, and ``run`` itself killed.

The nodes here tick forever (``ticker.py``) until told to stop, so every test waits for them to
be running (a ``READY`` line) before it signals anything.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from dora_zmq.testing import leaked_processes, write_dataflow

FLOWS = Path(__file__).resolve().parent / "flows"

_FOREVER = """
nodes:
  - id: ticker
    path: ticker.py
    inputs: {tick: dora/timer/millis/20}
    outputs: [count]
  - id: relay
    path: ticker.py
    inputs: {count: ticker/count}
    outputs: [count]
  - id: sink
    path: recorder.py
    inputs: {count: relay/count}
"""


def _forever(tmp_path: Path) -> Path:
    return write_dataflow(tmp_path, _FOREVER, copy=[FLOWS / "ticker.py", FLOWS / "recorder.py"])


def _wait_ready(p, *nodes: str) -> None:  # type: ignore[no-untyped-def]
    for node in nodes:
        p.wait_for_line(rf"^{node} READY$")


def _assert_nothing_left(tag: str, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while (left := leaked_processes(tag)) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for processes to disappear: there is no event to wait on
    assert not left, [" ".join(p.cmdline()) for p in left]


def test_ctrl_c_to_the_process_group_stops_every_node_cleanly(dora, tmp_path: Path) -> None:
    p = dora("run", str(_forever(tmp_path)))
    _wait_ready(p, "ticker", "relay", "sink")
    p.interrupt_group()  # a terminal's Ctrl-C: SIGINT to the whole foreground group
    result = p.wait(20)
    assert result.returncode == 0, result.output
    for node in ("ticker", "relay"):
        assert f"{node} STOP MANUAL" in result.stdout, result.output
    assert '"type": "STOP", "id": "MANUAL"' in result.stdout
    assert "KeyboardInterrupt" not in result.output
    assert "Traceback" not in result.output
    assert "finished (stopped)" in result.stderr
    _assert_nothing_left(p.tag)


def test_sigterm_to_run_stops_cleanly(dora, tmp_path: Path) -> None:
    p = dora("run", str(_forever(tmp_path)))
    _wait_ready(p, "ticker", "relay", "sink")
    p.send_signal(signal.SIGTERM)
    result = p.wait(20)
    assert result.returncode == 0, result.output
    assert "ticker STOP MANUAL" in result.stdout
    assert "sink END after" in result.stdout
    assert "Traceback" not in result.output
    _assert_nothing_left(p.tag)


def test_sigkill_to_run_takes_every_node_with_it(dora, tmp_path: Path) -> None:
    """The orphan guard: PR_SET_PDEATHSIG (and the nodes' parent watch) when run dies hard."""
    p = dora("run", str(_forever(tmp_path)))
    _wait_ready(p, "ticker", "relay", "sink")
    p.send_signal(signal.SIGKILL)
    p.proc.wait(5)
    _assert_nothing_left(p.tag)


@pytest.mark.timeout(30)
def test_nodes_ignoring_stop_get_sigterm_after_the_grace_period_then_sigkill(dora, tmp_path: Path) -> None:
    yml = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: ticker
            path: ticker.py
            inputs: {tick: dora/timer/millis/20}
            outputs: [count]
          - id: stubborn
            path: ticker.py
            env: {IGNORE_STOP: 1}
            inputs: {count: ticker/count}
          - id: deaf
            path: ticker.py
            env: {IGNORE_STOP: 1, IGNORE_TERM: 1}
            inputs: {count: ticker/count}
        """,
        copy=[FLOWS / "ticker.py"],
    )
    p = dora("run", str(yml), "--grace-duration", "1")
    _wait_ready(p, "ticker", "stubborn", "deaf")
    stopped_at = time.monotonic()
    p.send_signal(signal.SIGINT)
    p.wait_for_line(r"^stubborn ignoring STOP$")
    p.wait_for_line(r"^stubborn node 'stubborn' failed")
    term_after = time.monotonic() - stopped_at
    p.wait_for_line(r"^deaf node 'deaf' failed")
    kill_after = time.monotonic() - stopped_at
    result = p.wait(20)
    assert result.returncode == 1, result.output
    assert 0.8 <= term_after <= 3.0, term_after  # the 1 s grace period, then SIGTERM
    assert 2.8 <= kill_after <= 6.0, kill_after  # SIGTERM ignored: SIGKILL 2 s later
    assert re.search(
        r"node 'stubborn' failed \(killed by signal 15\): "
        r"did not stop within the grace period \(1 s\) after STOP; killed with SIGTERM",
        result.stderr,
    ), result.output
    assert re.search(
        r"node 'deaf' failed \(killed by signal 9\): "
        r"did not stop within the grace period \(1 s\) after STOP; killed with SIGKILL",
        result.stderr,
    ), result.output
    assert "node 'ticker' failed" not in result.output  # it stopped in time
    _assert_nothing_left(p.tag)


def test_second_ctrl_c_kills_without_waiting_for_the_grace_period(dora, tmp_path: Path) -> None:
    yml = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: stubborn
            path: ticker.py
            env: {IGNORE_STOP: 1}
            inputs: {tick: dora/timer/millis/20}
        """,
        copy=[FLOWS / "ticker.py"],
    )
    p = dora("run", str(yml))  # the default grace period: 10 s
    _wait_ready(p, "stubborn")
    p.interrupt_group()
    p.wait_for_line(r"^stubborn ignoring STOP$")
    second = time.monotonic()
    p.interrupt_group()
    result = p.wait(20)
    assert time.monotonic() - second < 5.0  # SIGTERM at once, not after 10 s
    assert result.returncode == 1, result.output
    assert "press Ctrl-C again to kill" in result.stderr and "killing the dataflow's nodes" in result.stderr
    assert "node 'stubborn' failed (killed by signal 15)" in result.stderr
    assert "KeyboardInterrupt" not in result.output and "Traceback" not in result.output
    _assert_nothing_left(p.tag)
