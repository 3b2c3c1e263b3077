"""Checks that need more than one field: files on disk, unique node ids, and input sources.

:mod:`dora_zmq.descriptor.parse` reads each node on its own into a :class:`NodeDraft`;
the functions here resolve program and operator paths against the YAML's folder (and
``PATH``), drop nodes whose id is already taken, and resolve every input's source against the
outputs the other nodes declare, so the finished :class:`NodeSpec` records hold only
references that exist.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from ._problems import Problems, Where, suggest
from .models import InputSpec, NodeKind, NodeSpec, OperatorSpec, OutputRef, TimerSpec

__all__ = [
    "NodeDraft",
    "find_program",
    "resolve_executable",
    "resolve_python",
    "drop_duplicate_ids",
    "resolve_sources",
]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class NodeDraft:
    """A node read on its own, before its input sources are checked against other nodes.

    Attributes:
        spec: the node, its inputs holding sources exactly as written.
        input_fields: input id → field path of that input, for error messages.
        single_operator: the operator id when the node used the single ``operator:`` form,
            whose outputs other nodes may name without the operator id.
        broken: the node's form was invalid (already reported), so sources naming it are
            not checked, rather than reported a second time.
    """

    spec: NodeSpec
    input_fields: dict[str, str] = field(default_factory=dict)
    single_operator: str | None = None
    broken: bool = False


def _absolute(path: Path) -> Path:
    # abspath normalises ".." without following symlinks, so the path stays the one written.
    return Path(os.path.abspath(path))


def _looks_like_file(text: str) -> bool:
    return "/" in text or os.sep in text or text.endswith(".py") or text.startswith("~")


def find_program(name: str) -> str | None:
    """A program on ``PATH``, else beside the running Python (a virtualenv's ``bin``).

    The second place is where dora_zmq's own node programs (``dora-zmq-record``,
    ``dora-zmq-replay``) are installed: a daemon started as ``.venv/bin/dora-zmq daemon``
    without activating the virtualenv still finds them.
    """
    return shutil.which(name) or shutil.which(name, path=os.path.dirname(sys.executable))


def resolve_executable(
    text: str, line: int | None, where: Where, p: Problems, working_dir: Path, check: bool
) -> Path | None:
    """Resolve a node's ``path``: a file relative to ``working_dir``, absolute, or on ``PATH``.

    Args:
        text: the path as written.
        line: its line, for errors.
        where: its place, for errors.
        p: where problems are recorded.
        working_dir: the folder relative paths start from.
        check: whether a missing file is an error.

    Returns:
        The absolute program path, or None when it cannot be resolved.
    """
    if "://" in text:
        p.add(
            where,
            line,
            f"URL paths are not supported: '{text}'",
            "download the program and give its local path",
        )
        return None
    candidate = _absolute(working_dir / os.path.expanduser(text))
    if candidate.exists() or _looks_like_file(text):
        if check:
            _check_program(text, candidate, line, where, p)
        return candidate
    found = find_program(text)
    if found is not None:
        return _absolute(Path(found))
    if check:
        p.add(
            where,
            line,
            f"program '{text}' not found (looked in {working_dir} and on PATH)",
            "give a path relative to the YAML file's folder, or install the program",
        )
    return None


def _check_program(text: str, path: Path, line: int | None, where: Where, p: Problems) -> None:
    if not path.exists():
        p.add(
            where,
            line,
            f"script '{text}' not found (looked in {path.parent})",
            "paths are relative to the folder of the YAML file; fix `path` or create the file",
        )
    elif path.is_dir():
        p.add(where, line, f"'{text}' is a directory, not a program", "point `path` at a file")
    elif path.suffix != ".py" and not os.access(path, os.X_OK):
        p.add(
            where,
            line,
            f"'{text}' is not executable",
            f"run `chmod +x {path}`, or use a .py script",
        )


def resolve_python(text: str, line: int | None, where: Where, p: Problems, working_dir: Path, check: bool) -> Path:
    """Resolve an operator's ``python`` file against ``working_dir``, checking it exists if asked."""
    path = _absolute(working_dir / os.path.expanduser(text))
    if check and not path.is_file():
        p.add(
            where,
            line,
            f"operator script '{text}' not found (looked in {path.parent})",
            "paths are relative to the folder of the YAML file; fix `python` or create the file",
        )
    return path


def drop_duplicate_ids(drafts: list[NodeDraft], p: Problems) -> list[NodeDraft]:
    """Report nodes whose id is already taken, and keep only the first of each id."""
    first: dict[str, NodeDraft] = {}
    for draft in drafts:
        node = draft.spec
        if node.id in first:
            earlier = first[node.id].spec.line
            p.add(
                Where(node.id, "id"),
                node.line,
                f"duplicate node id '{node.id}' (first at line {earlier}, again at line {node.line})",
                "give every node a unique id",
            )
        else:
            first[node.id] = draft
    return list(first.values())


def resolve_sources(drafts: list[NodeDraft], p: Problems) -> tuple[NodeSpec, ...]:
    """Check every input's source against the declared outputs and return the final nodes.

    A source naming a single-``operator:`` node's output without the operator id is rewritten
    to ``op_id/output``.
    """
    by_id = {d.spec.id: d for d in drafts}
    nodes = []
    for draft in drafts:
        resolved: dict[str, InputSpec] = {}
        for input_id, spec in draft.spec.inputs.items():
            where = Where(draft.spec.id, draft.input_fields.get(input_id, f"inputs.{input_id}"))
            resolved[input_id] = _resolve_input(spec, by_id, where, p) or spec
        nodes.append(_rebuild(draft.spec, resolved))
    return tuple(nodes)


def _resolve_input(spec: InputSpec, by_id: Mapping[str, NodeDraft], where: Where, p: Problems) -> InputSpec | None:
    ref = spec.source
    if isinstance(ref, TimerSpec):
        return spec
    target = by_id.get(ref.node)
    if target is None:
        close = suggest(ref.node, by_id)
        hint = f"did you mean '{close}'? " if close else ""
        p.add(
            where,
            spec.line,
            f"input '{spec.id}' reads '{ref.topic}', but there is no node '{ref.node}'",
            hint + f"nodes: {', '.join(sorted(by_id))}",
        )
        return None
    outputs = target.spec.outputs
    if target.broken:
        return None
    if ref.output in outputs:
        return spec
    single = target.single_operator
    if single is not None and f"{single}/{ref.output}" in outputs:
        return replace(spec, source=OutputRef(ref.node, f"{single}/{ref.output}"))
    _report_missing_output(spec, ref, target, where, p)
    return None


def _report_missing_output(spec: InputSpec, ref: OutputRef, target: NodeDraft, where: Where, p: Problems) -> None:
    node = target.spec
    single = target.single_operator
    shown = [o.split("/", 1)[1] if single else o for o in node.outputs]
    available = f"its outputs: {', '.join(shown)}" if shown else "it declares no outputs"
    wanted = ref.output.split("/", 1)[1] if single and ref.output.startswith(f"{single}/") else ref.output
    close = suggest(wanted, shown)
    hint = f"did you mean '{node.id}/{close}'? otherwise " if close else ""
    if node.kind is NodeKind.RUNTIME and single is None and "/" not in ref.output:
        hint += f"name the operator too, as '{node.id}/<operator>/{ref.output}'"
    else:
        hint += f"declare '{wanted}' under `outputs:` of node '{node.id}'"
    p.add(
        where,
        spec.line,
        f"input '{spec.id}' reads '{ref.topic}', but node '{node.id}' has no output '{wanted}' ({available})",
        hint,
    )


def _rebuild(node: NodeSpec, resolved: dict[str, InputSpec]) -> NodeSpec:
    operators = tuple(_rebuild_operator(op, resolved) for op in node.operators)
    return replace(node, inputs=MappingProxyType(resolved), operators=operators)


def _rebuild_operator(op: OperatorSpec, resolved: dict[str, InputSpec]) -> OperatorSpec:
    inputs = {local: replace(spec, source=resolved[f"{op.id}/{local}"].source) for local, spec in op.inputs.items()}
    return replace(op, inputs=MappingProxyType(inputs))
