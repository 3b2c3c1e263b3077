"""Build a :class:`Dataflow` from dora descriptor YAML, reporting every problem at once.

The YAML becomes a positioned tree (:mod:`._loader`); each node is read on its own into a
draft (path, ``custom:`` or operator form), then :mod:`.validate` checks ids and sources
across nodes. Problems are collected, not raised one by one, so ``dora-zmq check`` can show
them all; :class:`DescriptorErrors` is raised at the end if there were any.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from .._errors import DescriptorError, DescriptorErrors
from ._fields import (
    check_keys,
    describe_value,
    read_args,
    read_env,
    read_id,
    read_inputs,
    read_machine,
    read_outputs,
    read_text,
)
from ._loader import YMap, YNode, YScalar, YSeq, load_tree, to_plain
from ._problems import Problems, Where, suggest
from ._unsupported import unsupported_reason
from ._restart import RESTART_KEYS, check_restart, read_restart
from ._stdout import check_stdout_output, operators_stdout
from .models import SINGLE_OPERATOR_ID, Dataflow, InputSpec, NodeKind, NodeSpec, OperatorSpec
from .validate import (
    NodeDraft,
    drop_duplicate_ids,
    resolve_executable,
    resolve_python,
    resolve_sources,
)

__all__ = ["load_dataflow", "parse_dataflow"]

log = logging.getLogger(__name__)

_TOP_KEYS = ("nodes", "env", "communication", "deploy", "_unstable_deploy")
_NODE_KEYS = (
    "id",
    "name",
    "description",
    "path",
    "args",
    "env",
    "inputs",
    "outputs",
    "operators",
    "operator",
    "custom",
    "deploy",
    "_unstable_deploy",
    "build",
    "send_stdout_as",
    *RESTART_KEYS,
)
RESERVED_NODE_ID = "dora"  # `dora/timer/...` sources would collide with a node's `dora/timer` output
_BODY_KEYS = ("path", "custom", "operator", "operators")
_DORA_ONLY_BODIES = ("ros2", "module")  # dora's other node forms, not implemented here
_CUSTOM_KEYS = ("source", "args", "envs", "inputs", "outputs", "build", "send_stdout_as")
_OPERATOR_KEYS = (
    "id",
    "name",
    "description",
    "python",
    "inputs",
    "outputs",
    "build",
    "send_stdout_as",
    "shared-library",
    "wasm",
)
_PYTHON_KEYS = ("source", "conda_env")


@dataclass(frozen=True, slots=True)
class _Context:
    problems: Problems
    working_dir: Path
    check_paths: bool
    built: bool  # the build commands ran: what they make must exist now
    base_env: dict[str, str] = field(default_factory=dict)  # the top-level `env:`, under every node's


@dataclass(slots=True)
class _Body:
    """What a node's path / custom / operator form contributes to its :class:`NodeSpec`."""

    kind: NodeKind = NodeKind.CUSTOM
    path: str | None = None
    executable: Path | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    input_fields: dict[str, str] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    operators: tuple[OperatorSpec, ...] = ()
    single_operator: str | None = None
    build: str | None = None
    send_stdout_as: str | None = None


def load_dataflow(path: str | os.PathLike[str], *, check_paths: bool = True, built: bool = False) -> Dataflow:
    """Read and validate a dataflow YAML file.

    Args:
        path: the YAML file; relative paths inside it start from its folder.
        check_paths: whether node programs and operator files must exist (those a `build:`
            makes only when ``built``).
        built: the build commands ran already.

    Returns:
        The validated dataflow.

    Raises:
        DescriptorErrors: the file cannot be read, or it has problems (all of them listed).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        err = DescriptorError(
            f"cannot read the descriptor: {reason}",
            file=str(file),
            hint="check the file name and that it is a UTF-8 YAML file",
        )
        raise DescriptorErrors([err]) from exc
    return parse_dataflow(text, path=file, check_paths=check_paths, built=built)


def parse_dataflow(
    text: str,
    *,
    path: Path | None = None,
    working_dir: Path | None = None,
    check_paths: bool = True,
    built: bool = False,
) -> Dataflow:
    """Parse and validate dataflow YAML text.

    Args:
        text: the YAML.
        path: the file it came from, used in error messages.
        working_dir: where relative paths start; defaults to ``path``'s folder, else the cwd.
        check_paths: whether node programs and operator files must exist (a coordinator or a
            daemon on another machine passes False); those a `build:` makes only when ``built``.
        built: the build commands ran already.

    Returns:
        The validated dataflow.

    Raises:
        DescriptorErrors: every problem found.
    """
    file = Path(path) if path is not None else None
    if working_dir is None:
        working_dir = file.parent if file is not None else Path.cwd()
    base = Path(os.path.abspath(working_dir))
    problems = Problems(str(file) if file is not None else None)
    ctx = _Context(problems, base, check_paths, built)
    tree = load_tree(text, problems)
    nodes: tuple[NodeSpec, ...] = ()
    default_machine = None
    if tree is not None:
        drafts, default_machine = _read_document(tree, ctx)
        nodes = resolve_sources(drop_duplicate_ids(drafts, problems), problems)
    problems.raise_if_any()
    assert tree is not None
    raw = to_plain(tree)
    log.debug("parsed dataflow %s: %d nodes", file or "<text>", len(nodes))
    return Dataflow(nodes, file, base, text, raw, default_machine)


def _read_document(tree: YNode, ctx: _Context) -> tuple[list[NodeDraft], str | None]:
    p, top = ctx.problems, Where()
    if not isinstance(tree, YMap):
        p.add(
            top,
            tree.line,
            "the descriptor must be a mapping with a `nodes:` list",
            "start the file with `nodes:`",
        )
        return [], None
    for text, entry in tree.entries.items():
        if text not in _TOP_KEYS and unsupported_reason("top-level", text):
            p.unknown_key(top.key(text), entry.key_line, text, _TOP_KEYS, "top-level")
        elif text not in _TOP_KEYS:
            close = suggest(text, _TOP_KEYS)
            hint = f"did you mean '{close}'? " if close else ""
            hint += f"valid top-level keys: {', '.join(_TOP_KEYS)}"
            p.add(top.key(text), entry.key_line, f"unknown top-level key '{text}'", hint)
    default_machine = _read_deploy(tree, top, p)
    ctx.base_env.update(read_env(_entry(tree, "env"), top.key("env"), p))
    nodes = _entry(tree, "nodes")
    if nodes is None:
        p.add(
            top,
            tree.line,
            "the descriptor has no `nodes:` list",
            "add `nodes:` with at least one node",
        )
        return [], default_machine
    if not isinstance(nodes, YSeq) or not nodes.items:
        p.add(
            top.key("nodes"),
            nodes.line,
            "`nodes` must be a non-empty list",
            "list the nodes as `- id: ...` items",
        )
        return [], default_machine
    drafts = [_read_node(item, i, ctx) for i, item in enumerate(nodes.items)]
    return [d for d in drafts if d is not None], default_machine


def _read_deploy(m: YMap, where: Where, p: Problems) -> str | None:
    """``deploy`` or the older ``_unstable_deploy``; both may be given only if they agree."""
    machines = {}
    for key in ("deploy", "_unstable_deploy"):
        if key in m.entries:
            machines[key] = read_machine(m.entries[key].value, where.key(key), p)
    found = {v for v in machines.values() if v is not None}
    if len(found) > 1:
        p.add(
            where.key("_unstable_deploy"),
            m.entries["_unstable_deploy"].key_line,
            "`deploy` and `_unstable_deploy` name different machines",
            "keep only `deploy`",
        )
    return machines.get("deploy") or machines.get("_unstable_deploy")


def _entry(m: YMap, key: str) -> YNode | None:
    entry = m.entries.get(key)
    return entry.value if entry is not None else None


def _read_node(item: YNode, index: int, ctx: _Context) -> NodeDraft | None:
    p = ctx.problems
    if not isinstance(item, YMap):
        p.add(
            Where(None, f"nodes[{index}]"),
            item.line,
            f"each node must be a mapping, got {describe_value(item)}",
            "write the node as `- id: name` followed by its fields",
        )
        return None
    node_id = _read_node_id(item, index, p)
    if node_id is None and not _bad_id_reported(item):
        p.add(
            Where(None, f"nodes[{index}]"),
            item.line,
            f"node #{index + 1} has no `id`",
            "add `id: <unique name>` to the node",
        )
    where = Where(node_id, "") if node_id is not None else Where(None, f"nodes[{index}]")
    check_keys(item, _NODE_KEYS, where, "node", p)
    body = _read_body(item, where, ctx)
    env = read_env(_entry(item, "env"), where.key("env"), p)
    common = {
        key: read_text(_entry(item, key), where.key(key), p)
        for key in ("name", "description", "build", "send_stdout_as")
    }
    machine = _read_deploy(item, where, p)
    restart_policy, restart = read_restart(item, where, p)
    if node_id is None:
        return None
    broken = body is None  # still a node: its id counts for duplicates and references
    body = body or _Body()
    spec = NodeSpec(
        id=node_id,
        kind=body.kind,
        path=body.path,
        executable=body.executable,
        args=body.args,
        env=MappingProxyType({**ctx.base_env, **env, **body.env}),
        inputs=MappingProxyType(body.inputs),
        outputs=body.outputs,
        operators=body.operators,
        machine=machine,
        line=item.line,
        name=common["name"],
        description=common["description"],
        build=body.build or common["build"],
        send_stdout_as=body.send_stdout_as or common["send_stdout_as"],
        restart_policy=restart_policy,
        restart=restart,
    )
    if not broken:
        check_stdout_output(spec, item, where, p)
        check_restart(spec, item, where, p)
    return NodeDraft(spec, body.input_fields, body.single_operator, broken)


def _read_node_id(item: YMap, index: int, p: Problems) -> str | None:
    where = Where(None, f"nodes[{index}].id")
    node_id = read_id(_entry(item, "id"), where, p, "node")
    if node_id != RESERVED_NODE_ID:
        return node_id
    p.add(
        where,
        item.line,
        f"node id '{RESERVED_NODE_ID}' is reserved: sources such as dora/timer/millis/100 are dora's own",
        "rename the node",
    )
    return None


def _bad_id_reported(item: YMap) -> bool:
    """Whether an ``id`` is present but was rejected (already reported by :func:`read_id`)."""
    value = _entry(item, "id")
    return value is not None and not (isinstance(value, YScalar) and value.is_null)


def _read_body(item: YMap, where: Where, ctx: _Context) -> _Body | None:
    """Dispatch on the node's form: exactly one of path / custom / operator / operators."""
    p = ctx.problems
    forms = [key for key in _BODY_KEYS if key in item.entries]
    if not forms and any(key in item.entries for key in _DORA_ONLY_BODIES):
        return None  # `ros2:` / `module:` nodes: reported as dora fields not implemented
    if not forms:
        p.add(
            where,
            item.line,
            "node has none of `path`, `operators`, `operator` or `custom`",
            "add `path: your_script.py` (or `path: dynamic`), or `operators:` for Python operators",
        )
        return None
    if len(forms) > 1:
        later = item.entries[forms[1]]
        p.add(
            where.key(forms[1]),
            later.key_line,
            f"node has both `{forms[0]}` and `{forms[1]}`",
            "a node takes exactly one of them",
        )
        return None
    form = forms[0]
    value = item.entries[form].value
    if form == "path":
        return _read_path_body(item, value, where, ctx)
    _reject_node_level_ports(item, where, form, p)
    if form == "custom":
        return _read_custom_body(value, where.key("custom"), ctx)
    return _read_runtime_body(value, where.key(form), form == "operator", ctx)


def _reject_node_level_ports(item: YMap, where: Where, form: str, p: Problems) -> None:
    hint = (
        "move it inside `custom:`, or switch to the `path:` form"
        if form == "custom"
        else "a runtime node's inputs and outputs belong to its operators"
    )
    for key in ("args", "inputs", "outputs"):
        if key in item.entries:
            p.add(
                where.key(key),
                item.entries[key].key_line,
                f"`{key}` is not allowed next to `{form}`",
                hint,
            )


def _read_path_body(item: YMap, value: YNode, where: Where, ctx: _Context) -> _Body | None:
    p = ctx.problems
    path = read_text(value, where.key("path"), p)
    if path is None or not path.strip():
        p.add(
            where.key("path"),
            value.line,
            "`path` is empty",
            "give a script path, a program name, or `dynamic`",
        )
        return None
    body = _Body(path=path)
    if path == "dynamic":
        body.kind = NodeKind.DYNAMIC
    else:
        # A program its `build:` makes need not exist before the build (as in dora).
        check = ctx.check_paths and (ctx.built or "build" not in item.entries)
        body.executable = resolve_executable(path, value.line, where.key("path"), p, ctx.working_dir, check)
    body.args = read_args(_entry(item, "args"), where.key("args"), p)
    _read_ports(body, item, where, p)
    return body


def _read_ports(body: _Body, m: YMap, where: Where, p: Problems) -> None:
    body.inputs = read_inputs(_entry(m, "inputs"), where.key("inputs"), p)
    body.input_fields = {i: where.key("inputs").key(i).field for i in body.inputs}
    body.outputs = read_outputs(_entry(m, "outputs"), where.key("outputs"), p)


def _read_custom_body(value: YNode, where: Where, ctx: _Context) -> _Body | None:
    """The older ``custom: {source, args, envs, inputs, outputs, build}`` form."""
    p = ctx.problems
    if not isinstance(value, YMap):
        p.add(where, value.line, "`custom` must be a mapping", "write `custom: {source: script.py}`")
        return None
    check_keys(value, _CUSTOM_KEYS, where, "custom", p)
    source_node = _entry(value, "source")
    source = read_text(source_node, where.key("source"), p)
    if source_node is None or source is None or not source.strip():
        p.add(
            where.key("source"),
            value.line,
            "`custom` has no `source`",
            "add `source: your_script.py` (or move to the `path:` form)",
        )
        return None
    body = _Body(path=source)
    if source == "dynamic":
        body.kind = NodeKind.DYNAMIC
    else:
        check = ctx.check_paths and (ctx.built or "build" not in value.entries)  # built: may not exist yet
        body.executable = resolve_executable(source, source_node.line, where.key("source"), p, ctx.working_dir, check)
    body.args = read_args(_entry(value, "args"), where.key("args"), p)
    body.env = read_env(_entry(value, "envs"), where.key("envs"), p)
    body.build = read_text(_entry(value, "build"), where.key("build"), p)
    body.send_stdout_as = read_text(_entry(value, "send_stdout_as"), where.key("send_stdout_as"), p)
    _read_ports(body, value, where, p)
    return body


def _read_runtime_body(value: YNode, where: Where, single: bool, ctx: _Context) -> _Body | None:
    """``operator:`` (one, id defaults to ``op``) or ``operators:`` (a list, ids required)."""
    p = ctx.problems
    if single:
        items: tuple[YNode, ...] = (value,)
    elif isinstance(value, YSeq) and value.items:
        items = value.items
    else:
        p.add(
            where,
            value.line,
            "`operators` must be a non-empty list",
            "list the operators as `- id: name` items with `python: file.py`",
        )
        return None
    operators: list[OperatorSpec] = []
    body = _Body(kind=NodeKind.RUNTIME)
    for i, item in enumerate(items):
        op_where = where if single else where.index(_operator_label(item, i))
        op = _read_operator(item, op_where, SINGLE_OPERATOR_ID if single else None, ctx)
        if op is None:
            continue
        if any(o.id == op.id for o in operators):
            p.add(
                op_where.key("id"),
                op.line,
                f"duplicate operator id '{op.id}'",
                "give every operator of a node a unique id",
            )
            continue
        operators.append(op)
        for local, spec in op.inputs.items():
            body.inputs[f"{op.id}/{local}"] = InputSpec(f"{op.id}/{local}", spec.source, spec.queue_size, spec.line)
            body.input_fields[f"{op.id}/{local}"] = op_where.key("inputs").key(local).field
    body.operators = tuple(operators)
    body.outputs = tuple(f"{op.id}/{out}" for op in operators for out in op.outputs)
    body.send_stdout_as = operators_stdout(items, where, single, p)
    body.single_operator = operators[0].id if single and operators else None
    return body


def _operator_label(item: YNode, index: int) -> int | str:
    """How errors name an operator of a list: its id when it has a plain one, else its position."""
    entry = item.entries.get("id") if isinstance(item, YMap) else None
    if entry is not None and isinstance(entry.value, YScalar) and not entry.value.is_null and entry.value.text.strip():
        return entry.value.text
    return index


def _read_operator(item: YNode, where: Where, default_id: str | None, ctx: _Context) -> OperatorSpec | None:
    p = ctx.problems
    if not isinstance(item, YMap):
        p.add(
            where,
            item.line,
            "an operator must be a mapping",
            "write `python: file.py` and its ports",
        )
        return None
    check_keys(item, _OPERATOR_KEYS, where, "operator", p)
    id_node = _entry(item, "id")
    op_id = default_id if id_node is None else read_id(id_node, where.key("id"), p, "operator")
    if op_id is None and (id_node is None or (isinstance(id_node, YScalar) and id_node.is_null)):
        p.add(where, item.line, "operator has no `id`", "add `id: <name unique in this node>`")
    inputs = read_inputs(_entry(item, "inputs"), where.key("inputs"), p)
    outputs = read_outputs(_entry(item, "outputs"), where.key("outputs"), p)
    for key in ("shared-library", "wasm"):
        if key in item.entries:
            p.add(
                where.key(key),
                item.entries[key].key_line,
                f"`{key}` operators are not supported: only Python operators are supported",
                "rewrite the operator in Python (`python: file.py`) or run it as a `path:` node",
            )
            # its ports stay known: readers of its outputs get no second, misleading error
            return OperatorSpec(op_id, None, "", MappingProxyType(inputs), outputs, item.line) if op_id else None
    source, source_line = _read_operator_source(item, where, p)
    name = read_text(_entry(item, "name"), where.key("name"), p)
    description = read_text(_entry(item, "description"), where.key("description"), p)
    build = read_text(_entry(item, "build"), where.key("build"), p)
    if op_id is None or source is None:
        return None
    check = ctx.check_paths and (ctx.built or build is None)  # a file its build makes may not exist yet
    python = resolve_python(source, source_line, where.key("python"), p, ctx.working_dir, check)
    return OperatorSpec(
        op_id,
        python,
        source,
        MappingProxyType(inputs),
        outputs,
        item.line,
        name=name,
        description=description,
        build=build,
    )


def _read_operator_source(item: YMap, where: Where, p: Problems) -> tuple[str | None, int]:
    """``python: file.py`` or ``python: {source: file.py, conda_env: name}``."""
    value = _entry(item, "python")
    here = where.key("python")
    if value is None or (isinstance(value, YScalar) and value.is_null):
        p.add(
            here if value else where,
            value.line if value else item.line,
            "operator has no `python` file",
            "add `python: your_operator.py`",
        )
        return None, item.line
    if isinstance(value, YMap):
        check_keys(value, _PYTHON_KEYS, here, "python", p)
        read_text(_entry(value, "conda_env"), here.key("conda_env"), p)
        value = _entry(value, "source")
        here = here.key("source")
        if value is None:
            p.add(here, item.line, "`python` has no `source`", "add `source: your_operator.py`")
            return None, item.line
    text = read_text(value, here, p)
    if text is None or not text.strip():
        if text is not None or (isinstance(value, YScalar) and value.is_null):
            p.add(here, value.line, "the operator's python file is empty", "give its path")
        return None, value.line
    return text, value.line
