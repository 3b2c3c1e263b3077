"""The daemon's heartbeat: a thread that does nothing but say "alive" to the coordinator.

The daemon's event loop also spawns nodes, reaps them and relays their logs; on a machine busy
starting dozens of Python processes one pass of it can take seconds. Beats sent from that loop
would then stop, and the coordinator would take a busy machine for a dead one. This thread owns
its own DEALER socket (ZeroMQ sockets are not thread-safe: it shares none with the loop) whose
routing id is the control connection's plus ``HEARTBEAT_ID_SUFFIX``; the coordinator credits
its beats to the daemon registered on that control connection, if they come with the same
CURVE key (see ``coordinator/_access.py``). It sleeps on an Event between beats, so it needs a
few microseconds of CPU twice a second.

Threading: ``start``/``stop`` are called by the daemon's loop thread; ``accepted`` is an Event
the loop sets when the coordinator accepted the daemon (beats before that would be dropped).
"""

from __future__ import annotations

import logging
import threading

from .. import _control as ctl
from .._errors import ControlError
from .._transport import Channel

__all__ = ["HeartbeatThread"]

log = logging.getLogger(__name__)


class HeartbeatThread:
    """Sends ``DaemonHeartbeat(machine_id)`` every ``HEARTBEAT_INTERVAL_S`` while ``accepted`` is set."""

    def __init__(self, coordinator: str, identity: str, machine_id: str) -> None:
        self._address = coordinator
        self._identity = identity + ctl.HEARTBEAT_ID_SUFFIX.decode()
        self._machine_id = machine_id
        self.accepted = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dora-zmq-daemon-heartbeat", daemon=True)

    def start(self) -> None:
        """Start beating (once the daemon is accepted)."""
        self._thread.start()

    def stop(self, timeout_s: float = 1.0) -> None:
        """Stop and close the socket (bounded; idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            channel = Channel.connect(self._address, identity=self._identity)
        except ControlError as exc:  # the loop's own connection to the same address works
            log.warning("daemon heartbeat thread not started: %s", exc)
            return
        try:
            while not self._stop.wait(ctl.HEARTBEAT_INTERVAL_S):
                if self.accepted.is_set():
                    channel.send(ctl.DaemonHeartbeat(self._machine_id))
        except ControlError as exc:
            log.warning("daemon heartbeat thread ended: %s", exc)
        finally:
            channel.close()
