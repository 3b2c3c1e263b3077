"""Drawing a :class:`~._layout.Layout` as inline SVG inside one self-contained HTML page.

Nothing is fetched: no script, font or stylesheet from elsewhere, so the page opens on a robot
without internet. Every box is ``<g class="node" data-id=...>`` and every link
``<g class="edge" data-source=... data-target=... data-label=...>``, for tools and tests.
"""

from __future__ import annotations

import html
from pathlib import Path

from ..descriptor import Dataflow
from ._layout import Box, Layout, Link, label_width, layout

__all__ = ["render_svg", "render_html"]

_FILL = {"custom": "#e8f0fe", "runtime": "#e6f4ea", "dynamic": "#fff8e1", "timer": "#f3e8fd"}
_STROKE = {"custom": "#1a73e8", "runtime": "#188038", "dynamic": "#f29900", "timer": "#9334e6"}
_LANE_FILL = ["#f8f9fa", "#f1f3f4"]
_FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"
_LABEL_H = 16.0
# the legend's swatches; a constant so the page template's lines stay short
_KEY_CSS = (
    ".key { display: inline-block; border: 1.5px solid; border-radius: 4px; padding: 1px 6px; "
    "margin-right: 6px; font-size: 12px; }"
)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def render_svg(lay: Layout) -> str:
    """The layout as an ``<svg>`` element (lanes, links, then boxes on top)."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{lay.width:.0f}" height="{lay.height:.0f}" '
        f'viewBox="0 0 {lay.width:.0f} {lay.height:.0f}" font-family="{_FONT}" font-size="13">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#5f6368"/></marker></defs>',
    ]
    named = len(lay.lanes) > 1 or any(lane.machine for lane in lay.lanes)
    for k, lane in enumerate(lay.lanes if named else []):
        title = f"machine {lane.machine}" if lane.machine else "default machine"
        parts.append(
            f'<g class="machine" data-machine="{_esc(lane.machine)}">'
            f'<rect x="{_m(lay)}" y="{lane.y:.1f}" width="{lay.width - 2 * _m(lay):.1f}" height="{lane.h:.1f}" rx="10" '
            f'fill="{_LANE_FILL[k % 2]}" stroke="#dadce0" stroke-dasharray="6 4"/>'
            f'<text x="{_m(lay) + 12:.1f}" y="{lane.y + 20:.1f}" font-weight="bold" fill="#3c4043">'
            f"{_esc(title)}</text></g>"
        )
    parts += [_link(lay, lk) for lk in lay.links]
    parts += [_box(b) for b in lay.boxes.values() if b.kind != "waypoint"]
    parts.append("</svg>")
    return "\n".join(parts)


def _m(lay: Layout) -> float:
    return 20.0 if lay.boxes else 0.0


def _box(b: Box) -> str:
    dash = ' stroke-dasharray="5 3"' if b.kind in ("dynamic", "timer") else ""
    text_x = b.x + b.w / 2
    lines = [
        f'<text x="{text_x:.1f}" y="{b.y + 24:.1f}" text-anchor="middle" font-weight="bold" fill="#202124">'
        f"{_esc(b.title)}</text>"
    ]
    if b.detail:
        lines.append(
            f'<text x="{text_x:.1f}" y="{b.y + 42:.1f}" text-anchor="middle" fill="#5f6368" font-size="12">'
            f"{_esc(b.detail)}</text>"
        )
    data_id = b.title if b.kind != "timer" else b.key
    return (
        f'<g class="node" data-id="{_esc(data_id)}" data-kind="{b.kind}" data-machine="{_esc(b.machine)}">'
        f"<title>{_esc(b.title)} ({_esc(b.kind)}{', machine ' + _esc(b.machine) if b.machine else ''})"
        f"{chr(10) + _esc(b.note) if b.note else ''}</title>"
        f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" height="{b.h:.1f}" rx="6" '
        f'fill="{_FILL[b.kind]}" stroke="{_STROKE[b.kind]}" stroke-width="1.5"{dash}/>' + "".join(lines) + "</g>"
    )


def _link(lay: Layout, lk: Link) -> str:
    s, t = lay.boxes[lk.source], lay.boxes[lk.target]
    if lk.source == lk.target:  # a node reading its own output (operators chained inside it)
        x, y = s.x + s.w / 2, s.y
        d = f"M{x - 14:.1f},{y:.1f} C{x - 30:.1f},{y - 34:.1f} {x + 30:.1f},{y - 34:.1f} {x + 14:.1f},{y:.1f}"
        mid = (x, y - 30)
    elif lk.back:  # closes a cycle: from under the source, below everything, to under the target
        x1, y1 = s.x + s.w / 2, s.y + s.h
        x2, y2 = t.x + t.w / 2, t.y + t.h
        low = max(y1, y2) + 40
        d = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{low:.1f} {x2:.1f},{low:.1f} {x2:.1f},{y2:.1f}"
        mid = ((x1 + x2) / 2, (y1 + y2) / 8 + 0.75 * low)
    else:  # left to right: curves in the gaps between columns, straight across waypoint rows
        points = [(s.x + s.w, s.y + s.h / 2)]
        for v in lk.via:
            wp = lay.boxes[v]
            points += [(wp.x, wp.y), (wp.x + wp.w, wp.y)]
        points.append((t.x, t.y + t.h / 2))
        d = f"M{points[0][0]:.1f},{points[0][1]:.1f}"
        for k in range(0, len(points) - 1, 2):
            (x1, y1), (x2, y2) = points[k], points[k + 1]
            bend = max(20.0, (x2 - x1) / 2)
            d += f" C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
            if k + 2 < len(points):
                d += f" L{points[k + 2][0]:.1f},{points[k + 2][1]:.1f}"
        (x1, y1), (x2, y2) = points[0], points[1]
        mid = ((x1 + x2) / 2, (y1 + y2) / 2)
    w = label_width(lk.label)
    return (
        f'<g class="edge" data-source="{_esc(_data_id(lay, lk.source))}" data-target="{_esc(lk.target)}"'
        f' data-label="{_esc(lk.label)}">'
        f'<path d="{d}" fill="none" stroke="#5f6368" stroke-width="1.5" marker-end="url(#arrow)"/>'
        f'<rect x="{mid[0] - w / 2:.1f}" y="{mid[1] - _LABEL_H / 2:.1f}" width="{w:.1f}" height="{_LABEL_H}"'
        ' rx="3" fill="#ffffff" fill-opacity="0.9"/>'
        f'<text x="{mid[0]:.1f}" y="{mid[1] + 4:.1f}" text-anchor="middle" font-size="11" fill="#3c4043">'
        f"{_esc(lk.label)}</text></g>"
    )


def _data_id(lay: Layout, key: str) -> str:
    box = lay.boxes[key]
    return box.key if box.kind == "timer" else box.title


def render_html(flow: Dataflow, title: str | None = None) -> str:
    """A self-contained HTML page showing the dataflow graph (works offline)."""
    lay = layout(flow)
    name = title or (Path(flow.path).name if flow.path else "dataflow")
    machines = [m or "(default)" for m in flow.machines()]
    legend = " ".join(
        f'<span class="key" style="background:{_FILL[k]};border-color:{_STROKE[k]}">{label}</span>'
        for k, label in (("custom", "node"), ("runtime", "operators"), ("dynamic", "dynamic node"), ("timer", "timer"))
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{_esc(name)} - dora-zmq graph</title>
<style>
body {{ font-family: {_FONT}; margin: 16px; color: #202124; background: #fff; }}
h1 {{ font-size: 18px; margin: 0 0 4px; }}
p {{ margin: 0 0 12px; color: #5f6368; font-size: 13px; }}
{_KEY_CSS}
.graph svg {{ max-width: 100%; height: auto; }}
details {{ margin-top: 12px; font-size: 12px; }}
</style>
</head>
<body>
<h1>{_esc(name)}</h1>
<p>{len(flow.nodes)} nodes, {len(lay.links)} links, machines: {_esc(", ".join(machines))}. {legend}</p>
<div class="graph">
{render_svg(lay)}
</div>
<details><summary>Mermaid</summary><pre>{_esc(flow.mermaid())}</pre></details>
</body>
</html>
"""
