"""The parsed dataflow as plain JSON-ready data and back, for a node that should not parse YAML.

A daemon has parsed and validated the dataflow already; it hands each node this form in its
``NodeSetup``, so that ``Node()`` builds the records directly instead of importing the parser
and yaml and parsing the whole file again (per node: about 30 ms of imports, and a parse that
grows with the graph: 55 ms for 101 nodes). Only :mod:`.models` is needed to read it.

The YAML text still travels with it: ``raw`` (``Node.dataflow_descriptor()``) is loaded from
it on first use. :func:`from_plain` raises ``ValueError`` on anything it does not recognise; the
node then parses the YAML as before.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .models import Dataflow, InputSpec, NodeKind, NodeSpec, OperatorSpec, OutputRef, RestartSpec, TimerSpec

__all__ = ["PLAIN_VERSION", "from_plain", "to_plain"]

#: Bumped with any change of the layout below; a node given another version parses the YAML.
PLAIN_VERSION = 1


def _path(p: Path | None) -> str | None:
    return None if p is None else str(p)


def _inputs(inputs: Mapping[str, InputSpec]) -> list[list[Any]]:
    out = []
    for i in inputs.values():
        if isinstance(i.source, TimerSpec):
            source: list[Any] = ["timer", i.source.interval_s, i.source.text]
        else:
            source = ["output", i.source.node, i.source.output]
        out.append([i.id, source, i.queue_size, i.line])
    return out


def to_plain(flow: Dataflow) -> dict[str, Any]:
    """``flow`` as JSON-ready data (everything but ``text`` and ``raw``)."""
    return {
        "v": PLAIN_VERSION,
        "path": _path(flow.path),
        "working_dir": str(flow.working_dir),
        "default_machine": flow.default_machine,
        "nodes": [
            {
                "id": n.id,
                "kind": n.kind.value,
                "path": n.path,
                "executable": _path(n.executable),
                "args": list(n.args),
                "env": dict(n.env),
                "inputs": _inputs(n.inputs),
                "outputs": list(n.outputs),
                "operators": [
                    [op.id, _path(op.python), op.source, _inputs(op.inputs), list(op.outputs), op.line]
                    + [op.name, op.description, op.build]
                    for op in n.operators
                ],
                "machine": n.machine,
                "line": n.line,
                "name": n.name,
                "description": n.description,
                "build": n.build,
                "send_stdout_as": n.send_stdout_as,
                "restart_policy": n.restart_policy,
                "restart": [
                    n.restart.policy,
                    n.restart.max_restarts,
                    n.restart.delay_s,
                    n.restart.max_delay_s,
                    n.restart.window_s,
                ],
            }
            for n in flow.nodes
        ],
    }


class _YamlOnDemand(Mapping[str, Any]):
    """``Dataflow.raw`` read from the YAML text the first time it is looked at."""

    __slots__ = ("_text", "_loaded")

    def __init__(self, text: str) -> None:
        self._text = text
        self._loaded: Mapping[str, Any] | None = None

    def _raw(self) -> Mapping[str, Any]:
        if self._loaded is None:
            import yaml

            loaded = yaml.safe_load(self._text)
            self._loaded = loaded if isinstance(loaded, Mapping) else {}
        return self._loaded

    def __getitem__(self, key: str) -> Any:
        return self._raw()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw())

    def __len__(self) -> int:
        return len(self._raw())


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _opt(value: Any, kind: type | tuple[type, ...]) -> Any:
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool) and kind is not bool):
        raise ValueError(f"expected {kind} or null, got {type(value).__name__}")
    return value


def _opt_path(value: Any) -> Path | None:
    return None if _opt(value, str) is None else Path(value)


def _read_inputs(items: Any) -> dict[str, InputSpec]:
    out: dict[str, InputSpec] = {}
    for input_id, source, queue_size, line in items:
        kind = source[0]
        if kind == "timer":
            src: OutputRef | TimerSpec = TimerSpec(float(_opt(source[1], (int, float))), _str(source[2]))
        elif kind == "output":
            src = OutputRef(_str(source[1]), _str(source[2]))
        else:
            raise ValueError(f"unknown input source kind {kind!r}")
        out[_str(input_id)] = InputSpec(_str(input_id), src, int(_opt(queue_size, int)), _opt(line, int))
    return out


def _read_node(n: Any) -> NodeSpec:
    operators = tuple(
        OperatorSpec(
            _str(op_id),
            _opt_path(python),
            _str(source),
            _read_inputs(inputs),
            tuple(_str(o) for o in outputs),
            _opt(line, int),
            _opt(name, str),
            _opt(description, str),
            _opt(build, str),
        )
        for op_id, python, source, inputs, outputs, line, name, description, build in n["operators"]
    )
    policy, max_restarts, delay_s, max_delay_s, window_s = n["restart"]
    return NodeSpec(
        id=_str(n["id"]),
        kind=NodeKind(n["kind"]),
        path=_opt(n["path"], str),
        executable=_opt_path(n["executable"]),
        args=tuple(_str(a) for a in n["args"]),
        env={_str(k): _str(v) for k, v in n["env"].items()},
        inputs=_read_inputs(n["inputs"]),
        outputs=tuple(_str(o) for o in n["outputs"]),
        operators=operators,
        machine=_opt(n["machine"], str),
        line=_opt(n["line"], int),
        name=_opt(n["name"], str),
        description=_opt(n["description"], str),
        build=_opt(n["build"], str),
        send_stdout_as=_opt(n["send_stdout_as"], str),
        restart_policy=_opt(n["restart_policy"], str),
        restart=RestartSpec(
            _str(policy),
            _opt(max_restarts, int),
            _opt(delay_s, (int, float)),
            _opt(max_delay_s, (int, float)),
            _opt(window_s, (int, float)),
        ),
    )


def from_plain(data: Any, text: str) -> Dataflow:
    """The :class:`Dataflow` that :func:`to_plain` made ``data`` from, with its YAML ``text``.

    Raises:
        ValueError: ``data`` is not such a form (another version, a missing or mistyped field).
    """
    try:
        if not isinstance(data, dict) or data.get("v") != PLAIN_VERSION:
            raise ValueError(f"not a dataflow of layout {PLAIN_VERSION}")
        return Dataflow(
            nodes=tuple(_read_node(n) for n in data["nodes"]),
            path=_opt_path(data["path"]),
            working_dir=Path(_str(data["working_dir"])),
            text=text,
            raw=_YamlOnDemand(text),
            default_machine=_opt(data["default_machine"], str),
        )
    except ValueError:
        raise
    except (KeyError, TypeError, AttributeError, IndexError) as exc:  # a shape it does not know
        raise ValueError(f"malformed dataflow: {type(exc).__name__}: {exc}") from exc
