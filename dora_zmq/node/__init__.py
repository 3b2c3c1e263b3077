"""The node API: ``Node`` (custom nodes) and its events (the environment names a daemon sets
are the process contract, in ``dora_zmq._control``)."""

from __future__ import annotations

from ._events import EVENT_KIND, Event, EventType, StopReason
from ._node import Node
from ._samples import OutputSample

__all__ = ["EVENT_KIND", "Event", "EventType", "Node", "OutputSample", "StopReason"]
