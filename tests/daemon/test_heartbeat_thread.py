"""The daemon's heartbeats do not depend on its event loop: while the loop is held (as by
starting many nodes on a loaded machine), the heartbeat thread still beats, on its own
connection named after the control connection."""

from __future__ import annotations

import threading
import time

import pytest

from dora_zmq import _control as ctl

from ._rig import DaemonRig

pytestmark = pytest.mark.timeout(60)


def test_beats_go_on_while_the_event_loop_is_held() -> None:
    rig = DaemonRig()
    held, release = threading.Event(), threading.Event()
    flush = rig.daemon._flush_logs

    def hold_once() -> None:
        if not held.is_set():
            held.set()
            release.wait(30)  # the loop is stuck here until the test has seen the beats
        flush()

    try:
        _first_beat(rig)  # the daemon is accepted: beats have begun
        rig.daemon._flush_logs = hold_once  # type: ignore[method-assign]
        assert held.wait(10), "the daemon's loop never ran"
        while rig.coordinator.recv(0) is not None:  # what was sent before the loop was held
            pass
        beat_peer = rig.peer + ctl.HEARTBEAT_ID_SUFFIX
        beats = 0
        deadline = time.monotonic() + 10
        while beats < 3:  # 1.5 s of beats with the loop held
            assert time.monotonic() < deadline, f"{beats} beats from the heartbeat thread in 10 s"
            got = rig.coordinator.recv(1000)
            if got is not None and isinstance(got[1], ctl.DaemonHeartbeat):
                assert got[0] == beat_peer, "a beat from the held loop"
                beats += 1
    finally:
        release.set()
        rig.close()


def _first_beat(rig: DaemonRig) -> None:
    deadline = time.monotonic() + 10
    while True:
        assert time.monotonic() < deadline, "no heartbeat within 10 s"
        got = rig.coordinator.recv(1000)
        if got is not None and isinstance(got[1], ctl.DaemonHeartbeat):
            return
