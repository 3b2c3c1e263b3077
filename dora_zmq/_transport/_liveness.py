"""How every tcp connection of dora_zmq notices a dead peer and comes back after an outage.

- Heartbeats (every 1 s, 3 s without an answer): a peer that vanished (host down, cable
  pulled) is dropped within seconds, not at TCP's timeout of minutes; its queue is freed.
  What was queued on that connection is lost with it (counted: see the node's receiver).
- Connect timeout (1 s), on the side that connects: a connection attempt made while the link
  was down gets no answer; without a timeout, TCP retries its SYN with backoff (1, 2, 4 s...),
  so a link that returned after 5 s was used again only 7 s or more later. With it, ZeroMQ
  abandons the attempt and tries again at its reconnect interval (100 ms).
"""

from __future__ import annotations

from typing import Any

import zmq

__all__ = ["CONNECT_TIMEOUT_MS", "HEARTBEAT_IVL_MS", "HEARTBEAT_TIMEOUT_MS", "keep_alive"]

HEARTBEAT_IVL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 3000
CONNECT_TIMEOUT_MS = 1000


def keep_alive(sock: "zmq.Socket[Any]") -> None:
    """Set heartbeats and the connect timeout on ``sock`` (before it binds or connects)."""
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
    sock.setsockopt(zmq.CONNECT_TIMEOUT, CONNECT_TIMEOUT_MS)  # only used by connect()
