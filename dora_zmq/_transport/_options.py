"""Socket options shared by the control channels, the data sockets and the relay, set once.

Both ends of a connection (and the relay between them) must agree on these: a subscriber
whose queue is smaller than its publisher's drops what the publisher believed delivered, and
heartbeats tuned differently on two sockets make "a peer vanished" mean two different delays.

How every tcp connection notices a dead peer and comes back after an outage
(:func:`keep_alive`):

- Heartbeats (every 1 s, 3 s without an answer): a peer that vanished (host down, cable
  pulled) is dropped within seconds, not at TCP's timeout of minutes; its queue is freed (and
  its shared-memory share released). What was queued on that connection is lost with it
  (counted: see the node's receiver and ``node/_stream_end``).
- Connect timeout (1 s), on the side that connects: a connection attempt made while the link
  was down gets no answer; without a timeout, TCP retries its SYN with backoff (1, 2, 4 s...),
  so a link that returned after 5 s was used again only 7 s or more later. With it, ZeroMQ
  abandons the attempt and tries again at its reconnect interval (100 ms).
"""

from __future__ import annotations

from typing import Any

import zmq

__all__ = ["CONNECT_TIMEOUT_MS", "HEARTBEAT_IVL_MS", "HEARTBEAT_TIMEOUT_MS", "HWM", "keep_alive", "worth_logging"]

#: ZeroMQ's own queue bound per connection, in messages (``SNDHWM``/``RCVHWM``). Large, so a
#: burst reaches the receiver thread's drop-oldest queues that implement dora's ``queue_size``
#: (ZeroMQ's HWM drops the *newest*, the wrong end). Fixed for a socket's life: see ``_in_flight``.
HWM = 10_000
HEARTBEAT_IVL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 3000
CONNECT_TIMEOUT_MS = 1000


def keep_alive(sock: "zmq.Socket[Any]") -> None:
    """Set heartbeats and the connect timeout on ``sock`` (before it binds or connects)."""
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
    sock.setsockopt(zmq.CONNECT_TIMEOUT, CONNECT_TIMEOUT_MS)  # only used by connect()


# What a peer can repeat at will (malformed messages, refused subscriptions) is logged the first
# _LOG_FIRST times, then every _LOG_EVERY-th time: a flood stays a trickle in the log.
_LOG_FIRST = 100
_LOG_EVERY = 1000


def worth_logging(count: int) -> bool:
    """Whether the ``count``-th occurrence of something a peer can repeat at will is logged."""
    return count <= _LOG_FIRST or count % _LOG_EVERY == 0
