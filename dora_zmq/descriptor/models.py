"""The parsed dataflow as frozen records, and the graph queries the runtime asks of it.

Everything here is plain data: building these records (and every check on the YAML) happens
in :mod:`dora_zmq.descriptor.parse`; nothing here reads files or starts processes.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "SINGLE_OPERATOR_ID",
    "NodeKind",
    "TimerSpec",
    "OutputRef",
    "InputSpec",
    "OperatorSpec",
    "RestartSpec",
    "NodeSpec",
    "Dataflow",
]

log = logging.getLogger(__name__)

SINGLE_OPERATOR_ID = "op"
"""Operator id given to the operator of a node declared with the single ``operator:`` form."""


class NodeKind(enum.Enum):
    """How a node's process comes to exist."""

    CUSTOM = "custom"
    """A program the daemon spawns (``path:`` or the older ``custom:`` form)."""
    DYNAMIC = "dynamic"
    """``path: dynamic``: started by hand, it joins the running dataflow by its id."""
    RUNTIME = "runtime"
    """A runtime process the daemon spawns to host Python operators."""


@dataclass(frozen=True, slots=True)
class TimerSpec:
    """A built-in periodic input such as ``dora/timer/millis/100``.

    Attributes:
        interval_s: seconds between two ticks.
        text: the source as written in the YAML.
    """

    interval_s: float
    text: str


@dataclass(frozen=True, slots=True)
class OutputRef:
    """One node output, as an input's source.

    Attributes:
        node: id of the producing node.
        output: output id inside that node; ``op_id/output`` for an operator's output.
    """

    node: str
    output: str

    @property
    def topic(self) -> str:
        """The ``node/output`` name the output is published under."""
        return f"{self.node}/{self.output}"


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One input of a node or an operator.

    Attributes:
        id: the input id the receiving code sees.
        source: the output (or timer) that feeds it.
        queue_size: how many messages wait before the oldest is dropped.
        line: 1-based line of the input in the YAML, when known.
    """

    id: str
    source: OutputRef | TimerSpec
    queue_size: int = 10
    line: int | None = None

    def source_text(self) -> str:
        """The source as ``node/output`` or the timer text."""
        if isinstance(self.source, TimerSpec):
            return self.source.text
        return self.source.topic


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    """One Python operator hosted by a runtime node.

    Attributes:
        id: operator id, unique inside its node.
        python: absolute path of the operator's Python file.
        source: the file as written in the YAML.
        inputs: the operator's inputs, keyed by their operator-local ids.
        outputs: the operator's output ids, operator-local.
        line: 1-based line of the operator in the YAML, when known.
        name: optional human-readable name.
        description: optional free text.
        build: optional build command (run by ``dora-zmq build``).
    """

    id: str
    python: Path | None
    source: str
    inputs: Mapping[str, InputSpec]
    outputs: tuple[str, ...]
    line: int | None
    name: str | None = None
    description: str | None = None
    build: str | None = None


@dataclass(frozen=True, slots=True)
class RestartSpec:
    """When the daemon starts a node again after it exits (dora's ``restart_policy`` fields).

    Attributes:
        policy: ``never``, ``on-failure`` (non-zero exit or a signal) or ``always``.
        max_restarts: restarts allowed (within ``window_s`` when set); 0 means unlimited;
            None (not given) lets the daemon apply its default bound.
        delay_s: wait before the first restart, doubled for each further one; None: at once.
        max_delay_s: cap of that doubling delay.
        window_s: restarts are counted within this many seconds, then the count starts over.
    """

    policy: str = "never"
    max_restarts: int | None = None
    delay_s: float | None = None
    max_delay_s: float | None = None
    window_s: float | None = None


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One node of the dataflow.

    For a :attr:`NodeKind.RUNTIME` node, :attr:`inputs` and :attr:`outputs` are the union of
    its operators' ports with ids prefixed by the operator id (``detector/bbox``).

    Attributes:
        id: node id, unique in the dataflow.
        kind: custom, dynamic or runtime.
        path: the ``path`` (or ``custom.source``) as written; None for runtime nodes.
        executable: the resolved absolute program, or None when there is none or it could
            not be resolved (paths not checked).
        args: command-line arguments.
        env: extra environment variables, values exactly as written in the YAML.
        inputs: inputs keyed by input id.
        outputs: declared output ids.
        operators: the operators of a runtime node, else empty.
        machine: the machine from the node's ``deploy``, if any.
        line: 1-based line of the node in the YAML, when known.
        name: optional human-readable name.
        description: optional free text.
        build: optional build command, stored for the CLI.
        send_stdout_as: output id that receives the node's stdout lines, if any.
        restart_policy: ``never``, ``on-failure`` or ``always``, if given.
        restart: the whole restart policy with its limits.
    """

    id: str
    kind: NodeKind
    path: str | None
    executable: Path | None
    args: tuple[str, ...]
    env: Mapping[str, str]
    inputs: Mapping[str, InputSpec]
    outputs: tuple[str, ...]
    operators: tuple[OperatorSpec, ...]
    machine: str | None
    line: int | None
    name: str | None = None
    description: str | None = None
    build: str | None = None
    send_stdout_as: str | None = None
    restart_policy: str | None = None
    restart: RestartSpec = RestartSpec()

    @property
    def is_python(self) -> bool:
        """True when the executable is a ``.py`` script (run with the Python interpreter)."""
        return self.executable is not None and self.executable.suffix == ".py"


@dataclass(frozen=True, slots=True)
class Dataflow:
    """A whole validated dataflow.

    Attributes:
        nodes: the nodes, in YAML order.
        path: the YAML file, when it came from one.
        working_dir: the folder relative paths were resolved against.
        text: the YAML text itself.
        raw: the plain parsed YAML (what ``Node.dataflow_descriptor()`` returns).
        default_machine: the top-level ``deploy.machine``, if any.
    """

    nodes: tuple[NodeSpec, ...]
    path: Path | None
    working_dir: Path
    text: str
    raw: Mapping[str, Any]
    default_machine: str | None = None
    _by_id: Mapping[str, NodeSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {n.id: n for n in self.nodes})

    def node(self, node_id: str) -> NodeSpec:
        """Return the node with this id.

        Raises:
            KeyError: no node has this id; the message lists the known ids.
        """
        try:
            return self._by_id[node_id]
        except KeyError:
            known = ", ".join(sorted(self._by_id)) or "none"
            raise KeyError(f"dataflow has no node '{node_id}' (nodes: {known})") from None

    def machine_of(self, node_id: str) -> str:
        """The machine a node runs on: its own, else the default, else ``""``."""
        return self.node(node_id).machine or self.default_machine or ""

    def machines(self) -> list[str]:
        """Distinct machine names in order of first use (``""`` for the unnamed machine)."""
        seen: dict[str, None] = {}
        for n in self.nodes:
            seen.setdefault(self.machine_of(n.id), None)
        return list(seen)

    def subscribers(self, node_id: str, output: str) -> list[tuple[str, str]]:
        """``(node id, input id)`` pairs that consume ``node_id/output``.

        ``output`` is the full output id (``op/bbox`` for an operator's output).
        """
        wanted = OutputRef(node_id, output)
        return [(n.id, i.id) for n in self.nodes for i in n.inputs.values() if i.source == wanted]

    def downstream_nodes(self, node_id: str) -> set[str]:
        """Ids of the nodes with at least one input from ``node_id`` (itself included if so)."""
        return {
            n.id
            for n in self.nodes
            for i in n.inputs.values()
            if isinstance(i.source, OutputRef) and i.source.node == node_id
        }

    def upstream_nodes(self, node_id: str) -> set[str]:
        """Ids of the nodes ``node_id`` reads at least one input from (timers excluded)."""
        return {i.source.node for i in self.node(node_id).inputs.values() if isinstance(i.source, OutputRef)}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary of the parsed dataflow (paths as strings)."""
        return {
            "path": str(self.path) if self.path else None,
            "working_dir": str(self.working_dir),
            "default_machine": self.default_machine,
            "nodes": [_node_to_dict(n) for n in self.nodes],
        }

    def mermaid(self) -> str:
        """The graph as a mermaid ``flowchart`` text (for ``dora-zmq graph``)."""
        return _render_mermaid(self)


def _inputs_to_dict(inputs: Mapping[str, InputSpec]) -> dict[str, Any]:
    return {i.id: {"source": i.source_text(), "queue_size": i.queue_size} for i in inputs.values()}


def _node_to_dict(node: NodeSpec) -> dict[str, Any]:
    return {
        "id": node.id,
        "kind": node.kind.value,
        "path": node.path,
        "executable": str(node.executable) if node.executable else None,
        "args": list(node.args),
        "env": dict(node.env),
        "inputs": _inputs_to_dict(node.inputs),
        "outputs": list(node.outputs),
        "operators": [
            {
                "id": op.id,
                "python": str(op.python) if op.python else None,
                "source": op.source,
                "inputs": _inputs_to_dict(op.inputs),
                "outputs": list(op.outputs),
                "name": op.name,
                "description": op.description,
            }
            for op in node.operators
        ],
        "machine": node.machine,
        "name": node.name,
        "description": node.description,
        "build": node.build,
        "send_stdout_as": node.send_stdout_as,
        "restart_policy": node.restart_policy,
        "restart": {
            "policy": node.restart.policy,
            "max_restarts": node.restart.max_restarts,
            "restart_delay": node.restart.delay_s,
            "max_restart_delay": node.restart.max_delay_s,
            "restart_window": node.restart.window_s,
        },
    }


def _mermaid_label(text: str) -> str:
    # Mermaid labels are quoted; a double quote inside must be an entity.
    return '"' + text.replace('"', "#quot;") + '"'


def _render_mermaid(flow: Dataflow) -> str:
    # Node ids may hold characters mermaid rejects, so boxes get generated ids.
    ids = {n.id: f"n{k}" for k, n in enumerate(flow.nodes)}
    timers: dict[str, str] = {}
    lines = ["flowchart TB"]
    for n in flow.nodes:
        label = n.id
        if n.operators:
            label += "<br/>" + ", ".join(op.id for op in n.operators)
        lines.append(f"  {ids[n.id]}[{_mermaid_label(label)}]")
    for n in flow.nodes:
        for inp in n.inputs.values():
            src = inp.source
            if isinstance(src, TimerSpec):
                if src.text not in timers:
                    timers[src.text] = f"t{len(timers)}"
                    lines.append(f"  {timers[src.text]}[/{_mermaid_label(src.text)}/]")
                start, edge = timers[src.text], inp.id
            else:
                start = ids[src.node]
                edge = src.output if src.output == inp.id else f"{src.output} as {inp.id}"
            lines.append(f"  {start} -- {_mermaid_label(edge)} --> {ids[n.id]}")
    return "\n".join(lines) + "\n"
