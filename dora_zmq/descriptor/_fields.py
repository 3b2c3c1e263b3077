"""Read one descriptor field each: ids, strings, args, env, outputs, inputs, sources and timers.

Each reader takes a value from the positioned tree, reports what is wrong with it into
:class:`Problems`, and returns the best value it can (or None) so parsing goes on. These
readers check syntax only; whether a source node and output exist is checked by
:mod:`dora_zmq.descriptor.validate` once every node is known.
"""

from __future__ import annotations

import logging
import math
import re
import shlex
from collections.abc import Collection

from ._loader import YMap, YNode, YScalar, YSeq
from ._problems import Problems, Where, suggest
from .models import InputSpec, OutputRef, TimerSpec

__all__ = [
    "describe_value",
    "check_keys",
    "read_text",
    "read_id",
    "read_args",
    "read_env",
    "read_outputs",
    "read_inputs",
    "read_source",
    "read_machine",
    "DEFAULT_QUEUE_SIZE",
]

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 10
_ID_CHAR = re.compile(r"[A-Za-z0-9_.\-]")
_INPUT_KEYS = ("source", "queue_size")
_DEPLOY_KEYS = ("machine",)
_TIMER_UNITS = ("millis", "secs", "hz")
_DORA_ONLY_SOURCES = ("logs",)  # dora/logs...: dora-rs 1.1 sources not implemented here
_TIMER_FORMS = "dora/timer/millis/N, dora/timer/secs/N or dora/timer/hz/F (N and F positive)"


def describe_value(node: YNode) -> str:
    """How a value reads in an error: ``a mapping``, ``a list``, ``null`` or ``'its text'``."""
    if isinstance(node, YMap):
        return "a mapping"
    if isinstance(node, YSeq):
        return "a list"
    return "null" if node.is_null else f"'{node.text}'"


def check_keys(m: YMap, valid: Collection[str], where: Where, what: str, p: Problems) -> None:
    """Report every key of ``m`` that is not in ``valid``, with a did-you-mean."""
    for text, entry in m.entries.items():
        if text not in valid:
            p.unknown_key(where.key(text), entry.key_line, text, valid, what)


def _control_chars(text: str) -> str:
    """The control characters (C0, DEL, C1) in ``text``, escaped, e.g. ``'\\x00', '\\n'``."""
    found = sorted({c for c in text if ord(c) < 32 or 127 <= ord(c) < 160})
    return ", ".join(repr(c) for c in found)


def _has_nul(text: str, line: int, where: Where, p: Problems) -> bool:
    """Report a NUL byte: no program can receive one in its arguments or environment."""
    if "\0" not in text:
        return False
    p.add(where, line, f"{text!r} contains a NUL byte", "the operating system cannot pass it to a program; remove it")
    return True


def read_text(node: YNode | None, where: Where, p: Problems) -> str | None:
    """A scalar field as its written text; None when absent or null (or holding a NUL byte)."""
    if node is None or (isinstance(node, YScalar) and node.is_null):
        return None
    if isinstance(node, YScalar):
        return None if _has_nul(node.text, node.line, where, p) else node.text
    p.add(where, node.line, f"expected a string, got {describe_value(node)}", "write a single value")
    return None


def read_id(node: YNode | None, where: Where, p: Problems, what: str) -> str | None:
    """A non-empty id of letters, digits, ``_``, ``-`` and ``.`` (dora's characters for ids;
    ids become topics, file names and log prefixes).

    ``/`` is refused with its own reason: it separates node, operator and output in sources;
    control characters too.
    """
    text = read_text(node, where, p)
    if node is None or text is None:
        return None
    if not text.strip():
        p.add(where, node.line, f"{what} id is empty", f"give the {what} a name")
        return None
    if bad := _control_chars(text):
        p.add(
            where,
            node.line,
            f"{what} id {text!r} contains control characters ({bad})",
            "use letters, digits, '_' and '-'",
        )
        return None
    if "/" in text:
        p.add(
            where,
            node.line,
            f"{what} id '{text}' contains '/'",
            "'/' separates node, operator and output ids in sources; use '_' or '-'",
        )
        return None
    bad_chars = sorted({c for c in text if not _ID_CHAR.match(c)})
    if bad_chars:
        shown = ", ".join(repr(c) for c in bad_chars)
        p.add(
            where,
            node.line,
            f"{what} id '{text}' contains {shown}",
            "ids use letters, digits, '_', '-' and '.', as in dora",
        )
        return None
    return text


def read_args(node: YNode | None, where: Where, p: Problems) -> tuple[str, ...]:
    """``args``: a string split like a shell would, or a list of scalars (their written text)."""
    if node is None or (isinstance(node, YScalar) and node.is_null):
        return ()
    if isinstance(node, YScalar):
        if _has_nul(node.text, node.line, where, p):
            return ()
        try:
            return tuple(shlex.split(node.text))
        except ValueError as exc:
            p.add(where, node.line, f"cannot split args: {exc}", "close the open quote")
            return ()
    if isinstance(node, YSeq):
        args: list[str] = []
        for i, item in enumerate(node.items):
            if isinstance(item, YScalar) and not item.is_null:
                if not _has_nul(item.text, item.line, where.index(i), p):
                    args.append(item.text)
            else:
                p.add(
                    where.index(i),
                    item.line,
                    f"an argument must be a scalar, got {describe_value(item)}",
                    "quote it as a string",
                )
        return tuple(args)
    p.add(where, node.line, "args must be a string or a list", "write `args: --flag value`")
    return ()


def read_env(node: YNode | None, where: Where, p: Problems) -> dict[str, str]:
    """``env``: names to scalar values, each kept as the exact text written in the YAML."""
    if node is None or (isinstance(node, YScalar) and node.is_null):
        return {}
    if not isinstance(node, YMap):
        p.add(
            where,
            node.line,
            f"env must be a mapping, got {describe_value(node)}",
            "write `NAME: value` lines",
        )
        return {}
    env: dict[str, str] = {}
    for name, entry in node.entries.items():
        here, value = where.key(name), entry.value
        if not name or "=" in name or _control_chars(name):
            p.add(
                here,
                entry.key_line,
                f"invalid environment variable name {name!r}",
                "use letters, digits and '_'",
            )
        elif isinstance(value, YScalar) and not value.is_null:
            if not _has_nul(value.text, value.line, here, p):
                env[name] = value.text
        else:
            p.add(
                here,
                value.line,
                f"env value must be a string, number or boolean, got {describe_value(value)}",
                'give a value, e.g. `NAME: ""` for an empty string',
            )
    return env


def read_outputs(node: YNode | None, where: Where, p: Problems) -> tuple[str, ...]:
    """``outputs``: a list of distinct output ids."""
    if node is None or (isinstance(node, YScalar) and node.is_null):
        return ()
    if not isinstance(node, YSeq):
        p.add(
            where,
            node.line,
            f"outputs must be a list, got {describe_value(node)}",
            "write `outputs: [a, b]`",
        )
        return ()
    outputs: list[str] = []
    for i, item in enumerate(node.items):
        out = read_id(item, where.index(i), p, "output")
        if out is None:
            if isinstance(item, YScalar) and item.is_null:
                p.add(where.index(i), item.line, "output id is missing", "give the output a name")
        elif out in outputs:
            p.add(where.index(i), item.line, f"output '{out}' is declared twice", "remove one of them")
        else:
            outputs.append(out)
    return tuple(outputs)


def read_inputs(node: YNode | None, where: Where, p: Problems) -> dict[str, InputSpec]:
    """``inputs``: input ids to sources, short (``node/output``) or long (``{source, queue_size}``)."""
    if node is None or (isinstance(node, YScalar) and node.is_null):
        return {}
    if not isinstance(node, YMap):
        p.add(
            where,
            node.line,
            f"inputs must be a mapping, got {describe_value(node)}",
            "write `input_id: node/output` lines",
        )
        return {}
    inputs: dict[str, InputSpec] = {}
    for name, entry in node.entries.items():
        here = where.key(name)
        input_id = read_id(YScalar(name, name, entry.key_line, ""), here, p, "input")
        spec = _read_input(input_id or name, entry.value, entry.key_line, here, p)
        if input_id is not None and spec is not None:
            inputs[input_id] = spec
    return inputs


def _read_input(input_id: str, node: YNode, line: int, where: Where, p: Problems) -> InputSpec | None:
    if isinstance(node, YScalar) and not node.is_null:
        source = read_source(node.text, node.line, input_id, where, p)
        return InputSpec(input_id, source, DEFAULT_QUEUE_SIZE, line) if source else None
    if not isinstance(node, YMap):
        p.add(
            where,
            node.line,
            f"input '{input_id}' has no source (got {describe_value(node)})",
            "write `node/output` or `{source: node/output, queue_size: N}`",
        )
        return None
    check_keys(node, _INPUT_KEYS, where, "input", p)
    src = node.entries.get("source")
    if src is None or (isinstance(src.value, YScalar) and src.value.is_null):
        p.add(where, node.line, f"input '{input_id}' has no `source`", "add `source: node/output`")
        return None
    text = read_text(src.value, where.key("source"), p)
    if text is None:
        return None
    queue = _read_queue_size(node, where, p)
    source = read_source(text, src.value.line, input_id, where.key("source"), p)
    return InputSpec(input_id, source, queue, line) if source and queue else None


def _read_queue_size(node: YMap, where: Where, p: Problems) -> int | None:
    entry = node.entries.get("queue_size")
    if entry is None or (isinstance(entry.value, YScalar) and entry.value.is_null):
        return DEFAULT_QUEUE_SIZE
    value = entry.value
    if (
        isinstance(value, YScalar)
        and isinstance(value.value, int)
        and not isinstance(value.value, bool)
        and value.value > 0
    ):
        return value.value
    p.add(
        where.key("queue_size"),
        value.line,
        f"queue_size must be a positive integer, got {describe_value(value)}",
        f"use a whole number of messages such as {DEFAULT_QUEUE_SIZE}",
    )
    return None


def read_source(text: str, line: int, input_id: str, where: Where, p: Problems) -> OutputRef | TimerSpec | None:
    """Parse a source: ``node/output``, ``node/operator/output`` or a ``dora/timer/...`` timer."""
    if text.startswith("dora/"):
        return _read_timer(text, line, input_id, where, p)
    parts = text.split("/")
    if len(parts) in (2, 3) and all(part.strip() for part in parts):
        return OutputRef(parts[0], "/".join(parts[1:]))
    p.add(
        where,
        line,
        f"input '{input_id}' has an invalid source '{text}'",
        "write `node/output` (or `node/operator/output` for an operator's output)",
    )
    return None


def _read_timer(text: str, line: int, input_id: str, where: Where, p: Problems) -> TimerSpec | None:
    parts = text.split("/")
    if len(parts) == 4 and parts[1] == "timer" and parts[2] in _TIMER_UNITS:
        interval = _timer_interval(parts[2], parts[3])
        if interval is not None:
            return TimerSpec(interval, text)
        message = f"input '{input_id}' has an invalid timer '{text}': '{parts[3]}' is not a positive "
        message += "integer" if parts[2] == "millis" else "number"
        p.add(where, line, message, f"use {_TIMER_FORMS}")
        return None
    if len(parts) >= 2 and parts[1] in _DORA_ONLY_SOURCES:
        p.add(
            where,
            line,
            f"input '{input_id}' reads '{text}', a dora-rs source that dora_zmq does not implement",
            f"dora_zmq's own sources are timers: {_TIMER_FORMS}",
        )
        return None
    hint = f"use {_TIMER_FORMS}"
    if len(parts) == 4 and parts[1] == "timer" and (unit := suggest(parts[2], _TIMER_UNITS)):
        hint = f"did you mean 'dora/timer/{unit}/{parts[3]}'? " + hint
    p.add(where, line, f"input '{input_id}' has an unknown dora source '{text}'", hint)
    return None


def _timer_interval(unit: str, amount: str) -> float | None:
    if unit == "millis":
        return int(amount) / 1000.0 if amount.isdigit() and int(amount) > 0 else None
    try:
        number = float(amount)
    except ValueError:
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    return number if unit == "secs" else 1.0 / number


def read_machine(node: YNode | None, where: Where, p: Problems) -> str | None:
    """A ``deploy`` / ``_unstable_deploy`` mapping's ``machine``."""
    if node is None or (isinstance(node, YScalar) and node.is_null):
        return None
    if not isinstance(node, YMap):
        p.add(
            where,
            node.line,
            f"deploy must be a mapping, got {describe_value(node)}",
            "write `{machine: name}`",
        )
        return None
    check_keys(node, _DEPLOY_KEYS, where, "deploy", p)
    entry = node.entries.get("machine")
    machine = read_text(entry.value if entry else None, where.key("machine"), p)
    if entry is not None and machine is not None and not machine.strip():
        p.add(where.key("machine"), entry.value.line, "machine name is empty", "name the machine")
        return None
    return machine
