"""``Outputs.reclaim``: a receive step applies an idle sender's releases, and never waits for a busy one."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from dora_zmq.node._outputs import RECLAIM_IDLE_S, Outputs


class _Shm:
    """Stands for ShmSender: counts the drains (what applies releases)."""

    def __init__(self, holds: bool = True) -> None:
        self.holds_segments = holds
        self.drained_at = 0.0
        self.drains = 0

    def drain(self, pub: Any) -> None:
        self.drains += 1
        self.drained_at = time.monotonic()


def _outputs(shm: _Shm) -> Outputs:
    return Outputs({"out": b"n/out\0"}, pub=object(), shm=shm)  # type: ignore[arg-type]


def test_an_idle_sender_is_drained_by_the_receive_step() -> None:
    shm = _Shm()
    outputs = _outputs(shm)
    outputs.reclaim()
    assert shm.drains == 1
    outputs.reclaim()  # it just looked: a step right after costs nothing
    assert shm.drains == 1


def test_a_sender_without_segments_is_left_alone() -> None:
    shm = _Shm(holds=False)
    _outputs(shm).reclaim()
    assert shm.drains == 0


@pytest.mark.timeout(10)
def test_a_busy_sender_is_not_waited_for() -> None:
    shm = _Shm()
    outputs = _outputs(shm)
    shm.drained_at = time.monotonic() - 2 * RECLAIM_IDLE_S
    with outputs.lock:  # the application is sending
        done = threading.Event()
        t = threading.Thread(target=lambda: (outputs.reclaim(), done.set()))
        t.start()
        assert done.wait(5), "reclaim waited for the send lock"
        t.join(5)
    assert shm.drains == 0  # the sender applies its releases itself after this send
