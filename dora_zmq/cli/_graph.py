"""``dora-zmq graph``: the dataflow as Mermaid text (default) or an offline HTML page."""

from __future__ import annotations

import webbrowser
from pathlib import Path

import click
from rich.markup import escape

from .._errors import ControlError
from ..graph import render_html
from . import cli
from ._console import err, out

__all__ = ["graph"]


@cli.command()
@click.argument("dataflow", type=click.Path(dir_okay=False))
@click.option("--mermaid", "fmt", flag_value="mermaid", default=True, help="Mermaid flowchart text (the default).")
@click.option(
    "--html",
    "fmt",
    flag_value="html",
    help="A self-contained HTML page (no internet needed), <stem>.html next to the YAML.",
)
@click.option(
    "-o",
    "--output",
    "output",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write here instead (Mermaid: instead of printing).",
)
@click.option("--open", "open_", is_flag=True, help="Open the HTML page in a browser (implies --html).")
def graph(dataflow: str, fmt: str, output: str | None, open_: bool) -> None:
    """Draw the dataflow: Mermaid text, or an HTML page with machines as lanes."""
    from ._commands import _load

    flow = _load(dataflow)
    if fmt == "mermaid" and not open_:
        if output is None:
            out.print(flow.mermaid(), markup=False)
        else:
            _write(Path(output), flow.mermaid())
        return
    target = Path(output) if output else Path(dataflow).with_suffix(".html")
    _write(target, render_html(flow))
    if open_ and not webbrowser.open(target.resolve().as_uri()):
        err.print(f"[yellow]no browser could be opened; open {escape(str(target))} yourself[/yellow]")


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ControlError(f"cannot write {path}: {exc}") from exc
    err.print(f"wrote {escape(str(path))}")
