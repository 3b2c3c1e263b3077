"""Every ZeroMQ socket dora_zmq opens, created here with our options (the only ``import zmq``).

* :class:`Channel` -- a control socket (ROUTER server or DEALER client) that carries
  ``dora_zmq._control`` messages.
* :class:`Publisher` -- a node's XPUB data socket; also hears subscriptions, which gives the
  sleep-free start barrier (see ``dora_zmq._wire.MARKER_PREFIX``).
* :class:`Subscriber` -- a node's SUB data socket.
* :class:`Poller` -- wait on several of the above at once.
"""

from __future__ import annotations

from ._channel import Channel, Poller, context, release_context
from ._data import STOP_LINGER_MS, Publisher, Subscriber, ipc_endpoint, queue_bytes
from ._relay import Relay
from ._wakeup import Wakeup

__all__ = [
    "STOP_LINGER_MS",
    "Channel",
    "Poller",
    "Publisher",
    "Subscriber",
    "context",
    "ipc_endpoint",
    "queue_bytes",
    "release_context",
    "Relay",
    "Wakeup",
]
