"""A layered left-to-right layout of a dataflow, with one horizontal lane per machine.

Steps (Sugiyama's, simplified for graphs of tens of nodes): the edges that close a cycle are
found by a depth-first search and drawn backwards; every vertex gets the rank of the longest
path that reaches it (a column); inside each column, vertices sit in their machine's lane, in
an order that a few barycenter sweeps choose to cut crossings. Lanes never overlap, so each
machine is one labelled rectangle. Timers are vertices of their own, one per timer and machine.
Pure computation: no I/O, no rendering (see :mod:`._svg`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..descriptor import Dataflow, NodeKind, TimerSpec

__all__ = ["CHAR_W", "Box", "Link", "Lane", "Layout", "label_width", "layout"]

CHAR_W = 7.8  # advance of a 13 px monospace glyph: box widths follow the text
_LINE_H = 18.0
_PAD_X, _PAD_Y = 14.0, 10.0
_COL_GAP, _ROW_GAP = 90.0, 44.0  # room for a self-loop above a box
_LANE_PAD, _LANE_HEAD = 18.0, 26.0
_MARGIN = 20.0
_SWEEPS = 4


def label_width(text: str) -> float:
    """Width of a link label (11 px text) with its padding."""
    return len(text) * CHAR_W * 0.85 + 8


@dataclass(slots=True)
class Box:
    """One drawn vertex: a node or a timer.

    Attributes:
        key: unique key (the node id, or ``timer:<machine>:<text>``).
        title: the first line (node id or timer text).
        detail: the second line (program, operators), may be empty.
        kind: ``custom``, ``dynamic``, ``runtime``, ``timer``, or ``waypoint`` (not drawn).
        machine: its machine (``""``: the default one).
        note: the node's ``name`` and ``description`` (shown on hover).
        rank / slot: column and row inside its lane.
        x, y, w, h: its rectangle.
    """

    key: str
    title: str
    detail: str
    kind: str
    machine: str
    note: str = ""
    rank: int = 0
    slot: int = 0
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0


@dataclass(slots=True)
class Link:
    """One drawn edge (parallel edges between two boxes are one link with both labels).

    Attributes:
        source / target: box keys.
        label: the output (``out as input`` when the input id differs), ``, ``-joined.
        back: it closes a cycle (drawn below the boxes, right to left).
        via: the invisible waypoints of a link that spans several columns, one per column
            between its ends: they hold a row free, so the link passes no box.
    """

    source: str
    target: str
    label: str
    back: bool = False
    via: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Lane:
    """A machine's horizontal band."""

    machine: str
    y: float
    h: float


@dataclass(slots=True)
class Layout:
    """Boxes, links and lanes with coordinates, and the drawing's size."""

    boxes: dict[str, Box]
    links: list[Link]
    lanes: list[Lane] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0


def layout(flow: Dataflow) -> Layout:
    """Lay ``flow`` out: ranks left to right, one lane per machine."""
    boxes, links = _graph(flow)
    _mark_back_links(boxes, links)
    _assign_ranks(boxes, links)
    _add_waypoints(boxes, links)
    _order_slots(boxes, links, flow.machines())
    result = Layout(boxes, links)
    _place(result, flow.machines())
    return result


def _graph(flow: Dataflow) -> tuple[dict[str, Box], list[Link]]:
    boxes: dict[str, Box] = {}
    for n in flow.nodes:
        if n.kind is NodeKind.RUNTIME:
            detail = "operators: " + ", ".join(op.id for op in n.operators)
        elif n.kind is NodeKind.DYNAMIC:
            detail = "dynamic"
        else:
            detail = n.path or ""
        note = " - ".join(t for t in (n.name, n.description) if t)
        boxes[n.id] = Box(n.id, n.id, detail, n.kind.value, flow.machine_of(n.id), note)
    labels: dict[tuple[str, str], list[str]] = defaultdict(list)
    for n in flow.nodes:
        machine = flow.machine_of(n.id)
        for inp in n.inputs.values():
            src = inp.source
            if isinstance(src, TimerSpec):
                key = f"timer:{machine}:{src.text}"
                boxes.setdefault(key, Box(key, src.text, "timer", "timer", machine))  # one per machine
                labels[(key, n.id)].append(inp.id)
            else:
                text = src.output if src.output == inp.id else f"{src.output} as {inp.id}"
                labels[(src.node, n.id)].append(text)
    links = [Link(s, t, ", ".join(names)) for (s, t), names in labels.items()]
    return boxes, links


def _mark_back_links(boxes: dict[str, Box], links: list[Link]) -> None:
    """Depth-first from every box in order; a link to a box still on the stack closes a cycle."""
    out: dict[str, list[Link]] = defaultdict(list)
    for link in links:
        out[link.source].append(link)
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    for root in boxes:
        if root in state:
            continue
        stack = [(root, iter(out[root]))]
        state[root] = 1
        while stack:
            key, it = stack[-1]
            step = next(it, None)
            if step is None:
                state[key] = 2
                stack.pop()
            elif state.get(step.target) == 1:
                step.back = True
            elif step.target not in state:
                state[step.target] = 1
                stack.append((step.target, iter(out[step.target])))


def _assign_ranks(boxes: dict[str, Box], links: list[Link]) -> None:
    """Longest path from the sources over forward links (a topological order exists now)."""
    forward = [lk for lk in links if not lk.back and lk.source != lk.target]
    indegree = {k: 0 for k in boxes}
    for lk in forward:
        indegree[lk.target] += 1
    ready = [k for k in boxes if indegree[k] == 0]
    while ready:
        key = ready.pop(0)
        for lk in forward:
            if lk.source == key:
                boxes[lk.target].rank = max(boxes[lk.target].rank, boxes[key].rank + 1)
                indegree[lk.target] -= 1
                if indegree[lk.target] == 0:
                    ready.append(lk.target)
    # A timer sits right before its first reader, not far left in column 0.
    for key, box in boxes.items():
        if box.kind == "timer":
            readers = [boxes[lk.target].rank for lk in links if lk.source == key]
            box.rank = max(0, min(readers, default=1) - 1)


def _add_waypoints(boxes: dict[str, Box], links: list[Link]) -> None:
    """One waypoint per column crossed by a long forward link, in the target's lane."""
    for k, lk in enumerate(links):
        if lk.back or lk.source == lk.target:
            continue
        first, last = boxes[lk.source].rank, boxes[lk.target].rank
        for rank in range(first + 1, last):
            key = f"~{k}:{rank}"
            boxes[key] = Box(key, "", "", "waypoint", boxes[lk.target].machine, rank=rank)
            lk.via.append(key)


def _order_slots(boxes: dict[str, Box], links: list[Link], machines: list[str]) -> None:
    """Barycenter sweeps: each box moves toward the mean slot of its neighbours."""
    cells: dict[tuple[str, int], list[str]] = defaultdict(list)
    for key, box in boxes.items():
        cells[(box.machine, box.rank)].append(key)
    neighbours: dict[str, list[str]] = defaultdict(list)
    for lk in links:
        chain = [lk.source, *lk.via, lk.target]
        for a, b in zip(chain, chain[1:]):
            if a != b:
                neighbours[a].append(b)
                neighbours[b].append(a)
    _number(cells, boxes)
    for _ in range(_SWEEPS):
        for keys in cells.values():

            def centre(k: str) -> float:
                around = [boxes[n].slot for n in neighbours[k] if boxes[n].machine == boxes[k].machine]
                return sum(around) / len(around) if around else float(boxes[k].slot)

            keys.sort(key=lambda k: (centre(k), boxes[k].slot))
        _number(cells, boxes)


def _number(cells: dict[tuple[str, int], list[str]], boxes: dict[str, Box]) -> None:
    for keys in cells.values():
        for slot, key in enumerate(keys):
            boxes[key].slot = slot


def _place(result: Layout, machines: list[str]) -> None:
    boxes = result.boxes
    for box in boxes.values():
        if box.kind == "waypoint":
            continue  # a point: it takes a row, not a width
        lines = max(len(box.title), len(box.detail))
        box.w = max(90.0, lines * CHAR_W + 2 * _PAD_X)
        box.h = 2 * _LINE_H + 2 * _PAD_Y if box.detail else _LINE_H + 2 * _PAD_Y
    ranks = max((b.rank for b in boxes.values()), default=0) + 1
    col_w = [max((b.w for b in boxes.values() if b.rank == r), default=0.0) for r in range(ranks)]
    # A gap is wide enough for the labels drawn in it (those of links leaving its left column).
    gaps = [_COL_GAP] * ranks
    for lk in result.links:
        if not lk.back and lk.source != lk.target:
            r = boxes[lk.source].rank
            gaps[r] = max(gaps[r], label_width(lk.label) + 30)
    col_x = [_MARGIN + _LANE_PAD + sum(col_w[:r]) + sum(gaps[:r]) for r in range(ranks)]
    row_h = max((b.h for b in boxes.values()), default=0.0) + _ROW_GAP
    lanes_used = [m for m in machines if any(b.machine == m for b in boxes.values())]
    y = _MARGIN
    for machine in lanes_used:
        rows = max(b.slot for b in boxes.values() if b.machine == machine) + 1
        height = _LANE_HEAD + rows * row_h - _ROW_GAP + 2 * _LANE_PAD
        result.lanes.append(Lane(machine, y, height))
        mine = [b for b in boxes.values() if b.machine == machine]
        # A column with fewer rows than its lane is centred in it (a fan-in sits mid-fan).
        used = {r: 1 + max(b.slot for b in mine if b.rank == r) for r in {b.rank for b in mine}}
        for b in mine:
            top = y + _LANE_HEAD + _LANE_PAD + (rows - used[b.rank]) * row_h / 2 + b.slot * row_h
            if b.kind == "waypoint":
                # A row across the whole column: the link runs straight through it.
                b.x, b.w = col_x[b.rank], col_w[b.rank]
                b.y = top + (row_h - _ROW_GAP) / 2
            else:
                b.x = col_x[b.rank] + (col_w[b.rank] - b.w) / 2
                b.y = top + (row_h - _ROW_GAP - b.h) / 2
        y += height + _ROW_GAP
    result.width = col_x[-1] + col_w[-1] + _LANE_PAD + _MARGIN if boxes else 2 * _MARGIN
    # Links that close a cycle are drawn below the lanes: leave them room.
    below = 50.0 if any(lk.back and lk.source != lk.target for lk in result.links) else 0.0
    result.height = y - _ROW_GAP + _MARGIN + below
