"""Read a node's restart fields: ``restart_policy``, ``max_restarts``, ``restart_delay``,
``max_restart_delay`` and ``restart_window``, with dora-rs 1.1's names and meanings."""

from __future__ import annotations

import math

from ._fields import read_text
from ._loader import YMap, YNode, YScalar
from ._problems import Problems, Where, suggest
from .models import NodeKind, NodeSpec, RestartSpec

__all__ = ["RESTART_KEYS", "check_restart", "read_restart"]

RESTART_POLICIES = ("never", "on-failure", "always")
RESTART_KEYS = ("restart_policy", "max_restarts", "restart_delay", "max_restart_delay", "restart_window")


def read_restart(item: YMap, where: Where, p: Problems) -> tuple[str | None, RestartSpec]:
    """The policy as written (None if absent) and the whole :class:`RestartSpec`."""
    policy = _read_policy(item.entries["restart_policy"].value if "restart_policy" in item.entries else None, where, p)
    max_restarts = _read_count(item, "max_restarts", where, p)
    delay = _read_seconds(item, "restart_delay", where, p)
    max_delay = _read_seconds(item, "max_restart_delay", where, p)
    window = _read_seconds(item, "restart_window", where, p)
    return policy, RestartSpec(policy or "never", max_restarts, delay, max_delay, window)


def check_restart(spec: NodeSpec, item: YMap, where: Where, p: Problems) -> None:
    """A node started by hand (``path: dynamic``) is not the daemon's to restart."""
    if spec.kind is NodeKind.DYNAMIC and spec.restart.policy != "never":
        entry = item.entries.get("restart_policy")
        p.add(
            where.key("restart_policy"),
            entry.key_line if entry else item.line,
            "a dynamic node is started by hand: no daemon restarts it",
            "remove restart_policy, or restart the program with its own supervisor (systemd, a shell loop)",
        )


def _read_policy(value: YNode | None, where: Where, p: Problems) -> str | None:
    policy = read_text(value, where.key("restart_policy"), p)
    if value is None or policy is None or policy in RESTART_POLICIES:
        return policy
    close = suggest(policy, RESTART_POLICIES)
    hint = (f"did you mean '{close}'? " if close else "") + f"use one of: {', '.join(RESTART_POLICIES)}"
    p.add(where.key("restart_policy"), value.line, f"unknown restart_policy '{policy}'", hint)
    return None


def _read_count(item: YMap, key: str, where: Where, p: Problems) -> int | None:
    number = _read_number(item, key, where, p, "must be a whole number >= 0", "0 means unlimited (dora's default)")
    return int(number) if number is not None else None


def _read_seconds(item: YMap, key: str, where: Where, p: Problems) -> float | None:
    number = _read_number(item, key, where, p, "must be a number of seconds >= 0", "e.g. `1.0`", whole=False)
    return float(number) if number is not None else None


def _read_number(
    item: YMap, key: str, where: Where, p: Problems, problem: str, hint: str, *, whole: bool = True
) -> int | float | None:
    """A finite number >= 0 (an int when ``whole``); None when absent, null or wrong (reported)."""
    entry = item.entries.get(key)
    if entry is None or (isinstance(entry.value, YScalar) and entry.value.is_null):
        return None
    value = entry.value
    number = value.value if isinstance(value, YScalar) else None
    kinds = (int,) if whole else (int, float)
    if isinstance(number, kinds) and not isinstance(number, bool) and math.isfinite(number) and number >= 0:
        return number
    p.add(where.key(key), value.line, f"{key} {problem}", hint)
    return None
