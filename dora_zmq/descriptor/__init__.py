"""The dataflow descriptor: dora YAML in, validated frozen records out.

``load_dataflow`` / ``parse_dataflow`` read the YAML and raise :class:`DescriptorErrors`
listing every problem; the records in :mod:`.models` answer the graph questions the
coordinator, daemons and nodes ask. This package starts no process and opens no socket.
"""

from __future__ import annotations

from .models import (
    SINGLE_OPERATOR_ID,
    Dataflow,
    InputSpec,
    NodeKind,
    NodeSpec,
    OperatorSpec,
    RestartSpec,
    OutputRef,
    TimerSpec,
)
from .parse import load_dataflow, parse_dataflow
from .validate import find_program

__all__ = [
    "load_dataflow",
    "parse_dataflow",
    "find_program",
    "Dataflow",
    "NodeSpec",
    "NodeKind",
    "OperatorSpec",
    "RestartSpec",
    "InputSpec",
    "OutputRef",
    "TimerSpec",
    "SINGLE_OPERATOR_ID",
]
