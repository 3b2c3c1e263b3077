"""Turn YAML text into a tree whose every value knows its line and the text it was written as.

PyYAML's ``safe_load`` silently keeps the last of two equal mapping keys and forgets where
each value came from. We compose the YAML instead and walk the node graph ourselves, so a
duplicate key becomes an error naming both lines, and a scalar keeps its source text (an
env value written ``1.50`` reaches the node as ``1.50``, not ``1.5``). This is the one module
that calls PyYAML; its errors are translated into :class:`DescriptorError` here.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, TypeAlias

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ._problems import Problems, Where

__all__ = ["YScalar", "YEntry", "YMap", "YSeq", "YNode", "load_tree", "to_plain"]

log = logging.getLogger(__name__)

_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_NODE_ITEM = re.compile(r"^nodes\[\d+\]$")


@dataclass(frozen=True, slots=True)
class YScalar:
    """A scalar: its Python value, its text as written, its line and YAML tag."""

    value: Any
    text: str
    line: int
    tag: str

    @property
    def is_null(self) -> bool:
        """True for ``~``, ``null`` or an empty value."""
        return self.tag == _NULL_TAG


@dataclass(frozen=True, slots=True)
class YEntry:
    """One mapping entry: the key's Python value, the key's line and the value."""

    key: Any
    key_line: int
    value: YNode


@dataclass(frozen=True, slots=True)
class YMap:
    """A mapping, keyed by each key's text as written."""

    entries: dict[str, YEntry]
    line: int


@dataclass(frozen=True, slots=True)
class YSeq:
    """A sequence."""

    items: tuple[YNode, ...]
    line: int


YNode: TypeAlias = YScalar | YMap | YSeq


def load_tree(text: str, problems: Problems) -> YNode | None:
    """Parse YAML text into a positioned tree.

    Args:
        text: the YAML document.
        problems: where syntax errors, duplicate keys and bad tags are recorded.

    Returns:
        The tree, or None when the text is not valid YAML or holds no document.
    """
    try:
        over = _over_budget(text)
        if over is not None:
            line, message, hint = over
            problems.add(Where(), line, message, hint)
            return None
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where_line = mark.line + 1 if mark else None
        message = "invalid YAML: " + " ".join(p for p in (exc.context, exc.problem) if p)
        problems.add(Where(), where_line, message, "fix the YAML syntax at that line")
        return None
    except yaml.YAMLError as exc:
        problems.add(Where(), None, f"invalid YAML: {exc}", "fix the YAML syntax")
        return None
    if root is None:
        problems.add(Where(), None, "the descriptor is empty", "add a `nodes:` list")
        return None
    return _Walker(problems).walk(root, Where(), frozenset())


#: Values the document may expand to, aliases counted as many times as they are used. A large
#: real dataflow (a thousand nodes of twenty fields) is about 50,000; a "billion laughs" file
#: of 400 bytes expands to hundreds of millions, which would take hours and all the memory.
MAX_EXPANDED_VALUES = 500_000
#: Mappings and lists inside one another. dora's descriptors need about 6; PyYAML's composer
#: recurses per level and would hit Python's recursion limit near 1,000.
MAX_DEPTH = 64


def _over_budget(text: str) -> tuple[int, str, str] | None:
    """``(line, message, hint)`` when ``text`` nests or expands beyond the budget, else None.

    One pass over PyYAML's event stream (no node graph is built, nothing is expanded): the
    expanded size of each anchored value is known when it ends, and each alias adds it.

    Raises:
        yaml.YAMLError: the text is not valid YAML (reported by the caller).
    """
    sizes: dict[str, int] = {}  # anchor -> how many values it expands to
    stack: list[tuple[str | None, int]] = []  # open collections: (anchor, values so far)
    total = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = int(event.start_mark.line) + 1 if event.start_mark else 0
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                return line, f"the YAML nests more than {MAX_DEPTH} levels deep", "flatten the document"
            stack.append((event.anchor, 1))
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, size = stack.pop()
        elif isinstance(event, yaml.AliasEvent):
            anchor, size = None, sizes.get(str(event.anchor), 1)
        elif isinstance(event, yaml.ScalarEvent):
            anchor, size = event.anchor, 1
        else:
            continue
        if anchor is not None:
            sizes[anchor] = size
        if stack:
            stack[-1] = (stack[-1][0], stack[-1][1] + size)
        else:
            total += size
        if total + sum(n for _, n in stack) > MAX_EXPANDED_VALUES:
            return (
                line,
                f"the YAML expands to more than {MAX_EXPANDED_VALUES:,} values through its aliases "
                "(a 'billion laughs' document?)",
                "use fewer nested aliases (*name)",
            )
    return None


def to_plain(node: YNode) -> Any:
    """The plain Python value of a tree (what ``yaml.safe_load`` would return)."""
    if isinstance(node, YScalar):
        return node.value
    if isinstance(node, YSeq):
        return [to_plain(item) for item in node.items]
    return {entry.key: to_plain(entry.value) for entry in node.entries.values()}


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


class _Walker:
    """Converts composed YAML nodes, reporting problems as it goes."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.constructor = SafeConstructor()

    def walk(self, node: Node, where: Where, active: frozenset[int]) -> YNode:
        if id(node) in active:
            self.problems.add(where, _line(node), "recursive YAML alias", "remove the alias loop")
            return YScalar(None, "", _line(node), _NULL_TAG)
        if isinstance(node, ScalarNode):
            return self.scalar(node, where)
        active = active | {id(node)}
        if isinstance(node, SequenceNode):
            items = tuple(self.walk(item, self.item_where(where, i, item), active) for i, item in enumerate(node.value))
            return YSeq(items, _line(node))
        assert isinstance(node, MappingNode)
        return self.mapping(node, where, active)

    def item_where(self, where: Where, i: int, item: Node) -> Where:
        """Inside ``nodes[i]``, errors are placed at the node's id, not at a list index."""
        child = where.index(i)
        if where.node is None and _NODE_ITEM.match(child.field) and isinstance(item, MappingNode):
            for key, value in item.value:
                if key.value == "id" and isinstance(value, ScalarNode) and value.value:
                    return Where(value.value, "")
        return child

    def scalar(self, node: ScalarNode, where: Where) -> YScalar:
        try:
            value = self.constructor.construct_object(node)
        except ConstructorError as exc:
            self.problems.add(
                where,
                _line(node),
                f"unsupported YAML value: {exc.problem}",
                "write a plain string, number or boolean",
            )
            value = node.value
        except ValueError:
            value = node.value  # e.g. a date-like string that is no real date: keep the text
        return YScalar(value, str(node.value), _line(node), str(node.tag))

    def mapping(self, node: MappingNode, where: Where, active: frozenset[int]) -> YMap:
        entries: dict[str, YEntry] = {}
        merges: list[tuple[Node, int]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append((value_node, _line(key_node)))
                continue
            if not isinstance(key_node, ScalarNode):
                self.problems.add(where, _line(key_node), "mapping keys must be plain strings")
                continue
            key = self.scalar(key_node, where)
            here = where.key(key.text)
            if key.text in entries:
                first = entries[key.text].key_line
                self.problems.add(
                    here,
                    key.line,
                    f"duplicate key '{key.text}' (first at line {first}, again at line {key.line})",
                    "YAML would silently keep only the last one; remove or rename one of them",
                )
            value = self.walk(value_node, here, active)
            entries[key.text] = YEntry(key.value, key.line, value)
        for merge_node, line in merges:
            self.merge(entries, merge_node, line, where, active)
        return YMap(entries, _line(node))

    def merge(
        self,
        entries: dict[str, YEntry],
        source: Node,
        line: int,
        where: Where,
        active: frozenset[int],
    ) -> None:
        """Apply a ``<<: *anchor`` merge: keys written explicitly win over merged ones."""
        merged = self.walk(source, where, active)
        sources = merged.items if isinstance(merged, YSeq) else (merged,)
        for src in sources:
            if not isinstance(src, YMap):
                self.problems.add(where, line, "`<<` must merge a mapping or a list of mappings")
                continue
            for text, entry in src.entries.items():
                entries.setdefault(text, entry)
