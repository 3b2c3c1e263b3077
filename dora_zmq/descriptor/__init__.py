"""The dataflow descriptor: dora YAML in, validated frozen records out.

``load_dataflow`` / ``parse_dataflow`` read the YAML and raise :class:`DescriptorErrors`
listing every problem; the records in :mod:`.models` answer the graph questions the
coordinator, daemons and nodes ask. This package starts no process and opens no socket.

Names load on first use (PEP 562): a node reads the records a daemon hands it (``_plain``)
and never imports the parser or yaml.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:
    from .models import (
        SINGLE_OPERATOR_ID,
        Dataflow,
        InputSpec,
        NodeKind,
        NodeSpec,
        OperatorSpec,
        OutputRef,
        RestartSpec,
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

_LAZY = {
    **dict.fromkeys(
        [
            "SINGLE_OPERATOR_ID",
            "Dataflow",
            "InputSpec",
            "NodeKind",
            "NodeSpec",
            "OperatorSpec",
            "OutputRef",
            "RestartSpec",
            "TimerSpec",
        ],
        ".models",
    ),
    "load_dataflow": ".parse",
    "parse_dataflow": ".parse",
    "find_program": ".validate",
}

__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
