"""An in-process daemon registered with a stand-in coordinator (a ROUTER socket of the test's).

The stand-in can send what a real coordinator never would (a forged SpawnNodes, a dataflow id
that is a path) and see every report the daemon makes, while the daemon's supervisor starts
real node processes.
"""

from __future__ import annotations

import threading
from typing import Any

from dora_zmq import _control as ctl
from dora_zmq._transport import Channel
from dora_zmq.daemon import Daemon

#: Reports a daemon sends on its own schedule; skipped while waiting for another message.
QUIET = (ctl.DaemonHeartbeat, ctl.NodeLogs, ctl.NodeResources)


class DaemonRig:
    """A daemon (``daemon_kwargs`` as for :class:`Daemon`) serving on a thread, registered."""

    def __init__(self, **daemon_kwargs: Any) -> None:
        self.coordinator = Channel.serve("tcp://127.0.0.1:0")
        self.daemon = Daemon(self.coordinator.address, "", **daemon_kwargs)
        self.thread = threading.Thread(target=self.daemon.serve_forever, name="test-daemon", daemon=True)
        self.thread.start()
        try:
            self.peer, self.hello = self.recv(ctl.RegisterDaemon)
            self.coordinator.send(ctl.DaemonAccepted(), to=self.peer)
        except BaseException:
            self.close()
            raise

    def recv(self, kind: type, timeout_s: float = 15.0) -> tuple[bytes, Any]:
        """The next ``kind`` message the daemon sends (anything but QUIET reports first fails)."""
        while True:
            got = self.coordinator.recv(int(timeout_s * 1000))
            assert got is not None, f"the coordinator got no {kind.__name__} within {timeout_s} s"
            if isinstance(got[1], kind):
                return got
            assert isinstance(got[1], QUIET), f"unexpected message while waiting for {kind.__name__}: {got[1]!r}"

    def close(self) -> None:
        """Stop the daemon (and its nodes) and the stand-in; fails if the daemon hangs."""
        self.daemon.request_shutdown(0.0)
        self.thread.join(15)
        self.coordinator.close()
        assert not self.thread.is_alive(), "the daemon did not stop"
