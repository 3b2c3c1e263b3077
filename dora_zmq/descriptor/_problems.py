"""Collecting descriptor problems, each placed at a file, node, field and line.

Parsing carries on past a bad field or node, so every check reports into one
:class:`Problems` list and :func:`~dora_zmq.descriptor.parse.parse_dataflow` raises them
all together at the end.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from .._errors import DescriptorError, DescriptorErrors
from ._unsupported import unsupported_reason

__all__ = ["Where", "Problems", "suggest"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Where:
    """A place in the descriptor: the node (if any) and the field path inside it.

    Attributes:
        node: the node id, or None outside a node (or before its id is known).
        field: a dotted field path such as ``inputs.image`` or ``outputs[1]``.
    """

    node: str | None = None
    field: str = ""

    def key(self, name: str) -> Where:
        """The place of a mapping entry below this one."""
        return Where(self.node, f"{self.field}.{name}" if self.field else name)

    def index(self, i: int | str) -> Where:
        """The place of a list item below this one, by position or by its id."""
        return Where(self.node, f"{self.field}[{i}]")


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest of ``choices`` to a mistyped ``word``, if one is close enough."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def _same(a: DescriptorError, b: DescriptorError) -> bool:
    # The field is left out: an alias walked again sits at another field, same text and line.
    return (a.node, a.line, a.message) == (b.node, b.line, b.message)


class Problems:
    """The problems found in one descriptor, in the order they were found.

    Args:
        file: the YAML file name used in every error, or None for text without a file.
    """

    def __init__(self, file: str | None) -> None:
        self.file = file
        self.errors: list[DescriptorError] = []

    def add(self, where: Where, line: int | None, message: str, hint: str | None = None) -> None:
        """Record one problem."""
        err = DescriptorError(
            message,
            file=self.file,
            node=where.node,
            field=where.field or None,
            line=line,
            hint=hint,
        )
        if any(_same(err, seen) for seen in self.errors):
            return  # a YAML alias walked twice reports its problems once
        log.debug("descriptor problem: %s", err)
        self.errors.append(err)

    def unknown_key(self, where: Where, line: int | None, key: str, valid: Iterable[str], what: str) -> None:
        """Record an unknown field, suggesting the closest valid one.

        Args:
            where: the place of the unknown key itself.
            line: its line.
            key: the key as written.
            valid: the keys allowed there.
            what: what holds the key, e.g. ``"node"`` or ``"input"``.
        """
        reason = unsupported_reason(what, key)
        if reason is not None:
            self.add(where, line, f"{what} field '{key}' is a dora-rs field that dora_zmq does not implement", reason)
            return
        valid = sorted(valid)
        close = suggest(key, valid)
        hint = f"did you mean '{close}'? " if close else ""
        hint += f"valid {what} fields: {', '.join(valid)}"
        self.add(where, line, f"unknown {what} field '{key}'", hint)

    def raise_if_any(self) -> None:
        """Raise every recorded problem at once.

        Raises:
            DescriptorErrors: when at least one problem was recorded.
        """
        if self.errors:
            # In file order, so the list reads top to bottom next to the YAML.
            raise DescriptorErrors(sorted(self.errors, key=lambda e: e.line or 0))
