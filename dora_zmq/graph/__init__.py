"""Drawing a dataflow: a layered layout (``_layout``) as inline SVG in an offline HTML page (``_svg``).

``dora-zmq graph --html`` writes the page; ``dora-zmq graph`` prints Mermaid text
(:meth:`dora_zmq.descriptor.Dataflow.mermaid`).
"""

from __future__ import annotations

from ._layout import Box, Lane, Layout, Link, layout
from ._svg import render_html, render_svg

__all__ = ["Box", "Lane", "Layout", "Link", "layout", "render_html", "render_svg"]
