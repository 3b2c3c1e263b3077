"""The exceptions the streams toolkit raises, under ``dora_zmq.DoraZmqError``.

::

    DoraZmqError
    └── StreamsError               anything the streams toolkit reports
        ├── StreamConfigError      a bad stream depth or input spec (also a ``ValueError``)
        ├── GizmoInputError        a gizmo has no such input (also an ``IndexError``)
        └── CompositionError       lifecycle misuse, or gizmos that raised (``failures``)

Malformed ``StreamMeta`` records from another process raise the package-wide
``dora_zmq.ProtocolError`` instead, because they are a wire problem, not a pipeline one.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._errors import DoraZmqError

__all__ = [
    "CompositionError",
    "GizmoFailure",
    "GizmoInputError",
    "StreamConfigError",
    "StreamsError",
]


class StreamsError(DoraZmqError):
    """Base of every error raised by ``dora_zmq.streams``."""


class StreamConfigError(StreamsError, ValueError):
    """A stream or gizmo was configured with an impossible value (e.g. a too small depth)."""


class GizmoInputError(StreamsError, IndexError):
    """A gizmo was asked for an input stream it does not own."""


@dataclass(frozen=True, slots=True)
class GizmoFailure:
    """Why one gizmo failed: its name, the exception its ``run()`` raised, and the traceback text.

    Args:
        gizmo: the gizmo's ``name``.
        error: the exception raised by ``run()``.
        traceback: the formatted traceback of ``error``.
    """

    gizmo: str
    error: BaseException
    traceback: str

    def describe(self) -> str:
        """One paragraph: the gizmo, the error, and the traceback indented below.

        It opens with DeGirum's wording (``Error detected during execution of NAME:``), so
        code that searches a composition error's text for it ports unchanged.
        """
        tb = "\n".join("    " + line for line in self.traceback.rstrip().splitlines())
        return f"Error detected during execution of {self.gizmo}:\n  {type(self.error).__name__}: {self.error}\n{tb}"


class CompositionError(StreamsError):
    """A composition was misused, or one or more of its gizmos raised.

    Args:
        message: what went wrong; a summary line when ``failures`` are given.
        failures: one ``GizmoFailure`` per gizmo whose ``run()`` raised.
    """

    def __init__(self, message: str, failures: list[GizmoFailure] | None = None) -> None:
        self.failures = list(failures or [])
        lines = [message] + ["  " + f.describe() for f in self.failures]
        super().__init__("\n".join(lines))
