"""When the coordinator declares a daemon lost: the rule, in one place.

Silence alone is not proof. A machine busy starting 100 Python processes can keep a daemon's
event loop from beating for seconds, and failing every node of a live daemon is far worse than
noticing a dead one a little later. So:

* A daemon beats every ``HEARTBEAT_INTERVAL_S`` (0.5 s) from a thread that only sends (its
  own socket), so a busy event loop does not silence it.
* A daemon in the coordinator's own process (``dora-zmq run``) is never lost: if the process
  is alive, so is the daemon.
* A daemon silent for ``DAEMON_TIMEOUT_S`` (3 s, ``DORA_ZMQ_DAEMON_TIMEOUT``) is only a
  *suspect*. It is lost when its control connection is confirmed gone: a ``Probe`` the
  coordinator's socket cannot deliver (the daemon's process exited, its TCP connection reset,
  or ZeroMQ's own connection heartbeat -- answered by libzmq's I/O thread, which no Python load
  starves -- timed out, ``CONNECTION_TIMEOUT_S`` after a network cut).
* A suspect whose connection stays open but which stays silent for ``DAEMON_HUNG_S`` (60 s,
  ``DORA_ZMQ_DAEMON_HUNG_TIMEOUT``) is declared lost anyway: its process is alive but wedged.

Owned by the coordinator's event loop thread (as is every ``DaemonRecord``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["DAEMON_HUNG_S", "DAEMON_TIMEOUT_S", "PROBE_EVERY_S", "Verdict", "judge"]

DAEMON_TIMEOUT_S = float(os.environ.get("DORA_ZMQ_DAEMON_TIMEOUT", "3"))
DAEMON_HUNG_S = max(DAEMON_TIMEOUT_S, float(os.environ.get("DORA_ZMQ_DAEMON_HUNG_TIMEOUT", "60")))
#: A suspect's connection is probed this often (a probe is one small message).
PROBE_EVERY_S = 0.5


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do about one daemon now."""

    probe: bool = False  # check its connection (send a Probe)
    lost: str = ""  # why it is lost ("" = it is not)
    suspect: bool = False  # silent past DAEMON_TIMEOUT_S, not (yet) confirmed lost


def judge(silent_s: float, in_process: bool, connected: bool | None = None) -> Verdict:
    """The verdict on a daemon silent for ``silent_s`` seconds.

    Args:
        in_process: the daemon runs in the coordinator's process.
        connected: what the last probe said (None: not probed yet).
    """
    if in_process or silent_s <= DAEMON_TIMEOUT_S:
        return Verdict()
    if connected is False:
        return Verdict(lost=f"no heartbeat for {silent_s:.1f} s and its connection is closed")
    if silent_s > DAEMON_HUNG_S:
        return Verdict(lost=f"no heartbeat for {silent_s:.0f} s although its connection is open (hung)")
    return Verdict(probe=True, suspect=True)
