"""dora_zmq: dora-rs dataflows in Python, Arrow over ZeroMQ, traced with OpenTelemetry."""

from __future__ import annotations

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
