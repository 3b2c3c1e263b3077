"""The exception tree for every error dora_zmq reports to a user.

::

    DoraZmqError
    ├── DescriptorError        a dataflow YAML is wrong (file, node, field, line, hint)
    │   └── DescriptorErrors   several of them at once (``dora-zmq check`` prints all)
    ├── ProtocolError          a malformed frame or a control-protocol version mismatch
    ├── NodeConfigError        a node was started without the environment a daemon sets
    ├── OutputError            ``send_output`` to an output the YAML does not declare
    ├── ControlError           the coordinator or a daemon refused or could not be reached
    ├── RecordingError         a recording folder is missing, truncated or corrupt
    ├── BundleError            a dataflow folder could not be shipped (too large, corrupt, hostile)
    ├── BuildFailed            a node's ``build:`` command failed (node, command, exit code)
    └── DataflowFailed         a dataflow ended with failed nodes (each a ``NodeFailure``)

Everything a user can cause is one of these; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DoraZmqError",
    "DescriptorError",
    "DescriptorErrors",
    "ProtocolError",
    "NodeConfigError",
    "OutputError",
    "ControlError",
    "RecordingError",
    "BundleError",
    "BuildFailed",
    "DataflowFailed",
    "NodeFailure",
]


class DoraZmqError(Exception):
    """Base of every user-facing dora_zmq error."""


class DescriptorError(DoraZmqError):
    """One problem in a dataflow descriptor.

    Args:
        message: what is wrong.
        file: the YAML file, when known.
        node: the node id the problem is in, when there is one.
        field: the field path inside the node (e.g. ``inputs.image``).
        line: 1-based line number in the YAML file, when YAML gives one.
        hint: what to do about it.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        node: str | None = None,
        field: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.node = node
        self.field = field
        self.line = line
        self.hint = hint
        super().__init__(self.format())

    def format(self) -> str:
        """Render as ``file:line: node 'x', field 'y': message (hint)``."""
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        elif self.line:
            where = f"line {self.line}: "
        scope = []
        if self.node:
            scope.append(f"node '{self.node}'")
        if self.field:
            scope.append(f"field '{self.field}'")
        text = where + (", ".join(scope) + ": " if scope else "") + self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class DescriptorErrors(DescriptorError):
    """Several descriptor problems, reported together."""

    def __init__(self, errors: list[DescriptorError]) -> None:
        self.errors = list(errors)
        first = self.errors[0] if self.errors else None
        DoraZmqError.__init__(self, self.format())
        self.message = first.message if first else ""
        self.file = first.file if first else None
        self.node = first.node if first else None
        self.field = first.field if first else None
        self.line = first.line if first else None
        self.hint = first.hint if first else None

    def format(self) -> str:
        n = len(self.errors)
        head = f"{n} error{'s' if n != 1 else ''} in dataflow descriptor"
        return head + ":\n" + "\n".join("  - " + e.format() for e in self.errors)


class ProtocolError(DoraZmqError):
    """A frame or control message that does not follow the protocol."""


class NodeConfigError(DoraZmqError):
    """A node cannot find the configuration a daemon gives it."""


class OutputError(DoraZmqError, KeyError):
    """``send_output`` was called with an output id the node does not declare."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain message
        return str(self.args[0]) if self.args else ""


class ControlError(DoraZmqError):
    """The coordinator or a daemon refused a request or did not answer."""


class RecordingError(DoraZmqError):
    """A recording folder cannot be written or read: missing, truncated, corrupt or foreign."""


class BundleError(DoraZmqError):
    """A dataflow's folder could not be packed, sent or unpacked.

    Too large (the message names the largest files), an archive whose digest does not match,
    or one that tries to write outside its folder: what arrives is treated as hostile.
    """


class BuildFailed(DoraZmqError):
    """A node's ``build:`` command could not run or exited non-zero."""


@dataclass(frozen=True, slots=True)
class NodeFailure:
    """Why one node failed: its id, exit code (or signal) and the tail of its stderr."""

    node: str
    exit_code: int | None
    signal: int | None = None
    stderr_tail: str = ""
    reason: str = ""
    machine: str = ""

    def describe(self) -> str:
        """One paragraph: node, exit status, and the stderr tail indented below."""
        if self.signal is not None:
            status = f"killed by signal {self.signal}"
        elif self.exit_code is not None:
            status = f"exit code {self.exit_code}"
        else:
            status = ""
        text = f"node '{self.node}' failed" + (f" ({status})" if status else "")
        if self.machine:
            text += f" on machine '{self.machine}'"
        if self.reason:
            text += f": {self.reason}"
        if self.stderr_tail.strip():
            tail = "\n".join("    " + line for line in self.stderr_tail.rstrip().splitlines())
            text += "\n  last lines of its stderr:\n" + tail
        return text


class DataflowFailed(DoraZmqError):
    """A dataflow ended with one or more failed nodes."""

    def __init__(self, dataflow: str, failures: list[NodeFailure] | None = None) -> None:
        self.dataflow = dataflow
        self.failures = list(failures or [])
        lines = [f"dataflow '{dataflow}' failed:"] + ["  " + f.describe() for f in self.failures]
        super().__init__("\n".join(lines))
