"""dora_zmq: dora-rs dataflows in Python, Arrow over ZeroMQ, traced with OpenTelemetry.

The public names are loaded on first use (PEP 562): ``from dora_zmq import Node`` imports the
node runtime only, not the operator runtime, and ``import dora_zmq`` alone imports neither.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
