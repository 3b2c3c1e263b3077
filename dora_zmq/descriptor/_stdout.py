"""``send_stdout_as``: which output a node's printed lines go to, checked against its outputs."""

from __future__ import annotations

from ._fields import read_text
from ._loader import YMap, YNode, YScalar
from ._problems import Problems, Where
from .models import SINGLE_OPERATOR_ID, NodeSpec

__all__ = ["check_stdout_output", "operators_stdout"]


def check_stdout_output(spec: NodeSpec, item: YMap, where: Where, p: Problems) -> None:
    """Report a ``send_stdout_as`` that names no output of the node."""
    if spec.send_stdout_as is None or spec.send_stdout_as in spec.outputs:
        return
    entry = item.entries.get("send_stdout_as")
    p.add(
        where.key("send_stdout_as"),
        entry.key_line if entry else item.line,
        f"send_stdout_as '{spec.send_stdout_as}' is not one of the node's outputs",
        f"add it under `outputs:` (declared: {', '.join(spec.outputs) or 'none'})",
    )


def operators_stdout(items: tuple[YNode, ...], where: Where, single: bool, p: Problems) -> str | None:
    """An operator's ``send_stdout_as`` as the runtime node's (``op/output``).

    The operators of a node share one process, hence one stdout: one of them at most.
    """
    found: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, YMap) or "send_stdout_as" not in item.entries:
            continue
        id_entry = item.entries.get("id")
        op_id = (
            id_entry.value.text
            if id_entry and isinstance(id_entry.value, YScalar)
            else (SINGLE_OPERATOR_ID if single else str(i))
        )
        op_where = where if single else where.index(op_id)
        value = read_text(item.entries["send_stdout_as"].value, op_where.key("send_stdout_as"), p)
        if value is None:
            continue
        found.append(f"{op_id}/{value}")
        if len(found) == 2:
            p.add(
                op_where.key("send_stdout_as"),
                item.entries["send_stdout_as"].key_line,
                "two operators of one node set send_stdout_as: they share one process and one stdout",
                "keep it on one operator",
            )
    return found[0] if found else None
