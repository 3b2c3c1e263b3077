"""Socket options shared by the control channels, the data sockets and the relay, set once.

Both ends of a connection (and the relay between them) must agree on these: a subscriber
whose queue is smaller than its publisher's drops what the publisher believed delivered, and
heartbeats tuned differently on two sockets make "a peer vanished" mean two different delays.
"""

from __future__ import annotations

import zmq

__all__ = ["HEARTBEAT_IVL_MS", "HEARTBEAT_TIMEOUT_MS", "HWM", "set_heartbeats"]

#: ZeroMQ's own queue bound per connection, in messages (``SNDHWM``/``RCVHWM``). Large, so a
#: burst reaches the receiver thread's drop-oldest queues that implement dora's ``queue_size``
#: (ZeroMQ's HWM drops the *newest*, the wrong end); ``_data`` lowers it for large messages.
HWM = 10_000
#: ZMTP heartbeats: a ping every second, and a peer silent for 3 s is disconnected, so a host
#: that vanished is dropped within seconds (its queue freed, its shared-memory share
#: released) instead of at the TCP timeout (minutes).
HEARTBEAT_IVL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 3000


def set_heartbeats(sock: zmq.Socket[bytes]) -> None:
    """Turn on ZMTP heartbeats (:data:`HEARTBEAT_IVL_MS`, :data:`HEARTBEAT_TIMEOUT_MS`) on ``sock``."""
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
