"""dora_zmq: dora-rs dataflows in Python, Arrow over ZeroMQ, traced with OpenTelemetry.

The public names are loaded on first use (PEP 562): ``from dora_zmq import Node`` imports the
node runtime only, not the operator runtime, and ``import dora_zmq`` alone imports neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_names

from ._errors import (
    ControlError,
    DataflowFailed,
    DescriptorError,
    DescriptorErrors,
    DoraZmqError,
    NodeConfigError,
    OutputError,
    ProtocolError,
)
from ._version import __version__

if TYPE_CHECKING:
    from .node import Event, EventType, Node, OutputSample, StopReason
    from .operators import DoraStatus

__all__ = [
    "__version__",
    "DoraStatus",
    "Event",
    "EventType",
    "Node",
    "OutputSample",
    "StopReason",
    "ControlError",
    "DataflowFailed",
    "DescriptorError",
    "DescriptorErrors",
    "DoraZmqError",
    "NodeConfigError",
    "OutputError",
    "ProtocolError",
]

# name -> the submodule that defines it, imported when the name is first asked for
_LAZY = {
    "Event": ".node",
    "EventType": ".node",
    "Node": ".node",
    "OutputSample": ".node",
    "StopReason": ".node",
    "DoraStatus": ".operators",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
