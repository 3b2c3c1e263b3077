"""The node API: ``Node`` (custom nodes), its events, and the environment it starts from."""

from __future__ import annotations

from ._config import ENV_DAEMON, ENV_DATAFLOW, ENV_MACHINE, ENV_NODE
from ._events import EVENT_KIND, Event, EventType, StopReason
from ._node import Node
from ._samples import OutputSample

__all__ = ["EVENT_KIND", "ENV_DAEMON", "ENV_DATAFLOW", "ENV_MACHINE", "ENV_NODE", "Event", "EventType", "Node", "OutputSample", "StopReason"]
