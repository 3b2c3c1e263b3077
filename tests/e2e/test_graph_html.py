"""``dora-zmq graph --html`` rendered by a real headless browser, offline.

The page is parsed by Chromium (``--dump-dom``): every node and link of the dataflow must be
there. The drawing itself is screenshotted: each node's box must show its fill colour where
the layout put it, each link its label and a stroke along its path. Chromium comes from
Debian (``apt-get install -y chromium``); without it these tests skip.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
import uuid
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dora_zmq.descriptor import load_dataflow
from dora_zmq.graph import Layout, layout
from dora_zmq.testing import TAG_ENV, kill_tagged, write_dataflow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install -y chromium)"),
    pytest.mark.timeout(120),
]

FLOW = """
nodes:
  - id: camera
    path: node.py
    deploy: {machine: robot}
    inputs: {tick: dora/timer/millis/33}
    outputs: [image]
  - id: lidar
    path: node.py
    deploy: {machine: robot}
    inputs: {tick: dora/timer/millis/100}
    outputs: [points]
  - id: perception
    deploy: {machine: gpu}
    operators:
      - id: detect
        python: node.py
        inputs: {image: camera/image}
        outputs: [boxes]
      - id: track
        python: node.py
        inputs: {boxes: perception/detect/boxes}
        outputs: [tracks]
  - id: fuse
    path: node.py
    deploy: {machine: gpu}
    inputs:
      tracks: perception/track/tracks
      points: lidar/points
      plan: planner/plan
    outputs: [world]
  - id: planner
    path: node.py
    deploy: {machine: gpu}
    inputs: {world: fuse/world}
    outputs: [plan]
  - id: controller
    path: node.py
    deploy: {machine: robot}
    inputs:
      plan: planner/plan
      tick: dora/timer/millis/10
    outputs: [cmd]
  - id: dashboard
    path: dynamic
    deploy: {machine: laptop}
    inputs:
      image: camera/image
      cmd: controller/cmd
      world: fuse/world
"""

FILL = {
    "custom": (0xE8, 0xF0, 0xFE),
    "runtime": (0xE6, 0xF4, 0xEA),
    "dynamic": (0xFF, 0xF8, 0xE1),
    "timer": (0xF3, 0xE8, 0xFD),
}


def _chromium(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run headless Chromium, offline and isolated; every process it starts is killed after."""
    tag = uuid.uuid4().hex
    with tempfile.TemporaryDirectory() as profile:
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
        ]
        try:
            return subprocess.run(  # noqa: S603 - the system's chromium
                [str(CHROMIUM), *flags, *args],
                capture_output=True,
                timeout=90,
                start_new_session=True,
                env={**os.environ, TAG_ENV: tag},
            )
        finally:
            kill_tagged(tag)


class _Elements(HTMLParser):
    """The ``g.node`` and ``g.edge`` elements of the DOM Chromium built."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[dict[str, str]] = []
        self.edges: list[dict[str, str]] = []
        self.machines: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "g" and a.get("class") == "node":
            self.nodes.append(a)
        elif tag == "g" and a.get("class") == "edge":
            self.edges.append(a)
        elif tag == "g" and a.get("class") == "machine":
            self.machines.append(a["data-machine"])


def _read_png(data: bytes) -> tuple[int, int, list[bytearray]]:
    """Rows of RGB(A) bytes of an 8-bit, non-interlaced PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    bpp = 4 if colour == 6 else 3
    raw, rows, prev = zlib.decompress(idat), [], bytearray(width * bpp)
    stride = width * bpp + 1
    for y in range(height):
        kind, row = raw[y * stride], bytearray(raw[y * stride + 1 : (y + 1) * stride])
        for i in range(len(row)):
            left = row[i - bpp] if i >= bpp else 0
            up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                row[i] = (row[i] + left) & 0xFF
            elif kind == 2:
                row[i] = (row[i] + up) & 0xFF
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                row[i] = (row[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(row)
        prev = row
    return width, bpp, rows


def _pixel(img: tuple[int, int, list[bytearray]], x: float, y: float) -> tuple[int, int, int]:
    _, bpp, rows = img
    row = rows[int(round(y))]
    i = int(round(x)) * bpp
    return row[i], row[i + 1], row[i + 2]


def _darkest_near(img: tuple[int, int, list[bytearray]], x: float, y: float, r: int = 3) -> int:
    return min(sum(_pixel(img, x + dx, y + dy)) // 3 for dx in range(-r, r + 1) for dy in range(-r, r + 1))


def _expected_edges(lay: Layout) -> set[tuple[str, str, str]]:
    def name(key: str) -> str:
        return key if lay.boxes[key].kind == "timer" else lay.boxes[key].title

    return {(name(lk.source), lk.target, lk.label) for lk in lay.links}


@pytest.fixture
def page(dora, tmp_path: Path) -> tuple[Path, Layout]:
    yml = write_dataflow(tmp_path, FLOW, files={"node.py": "print('x')\n"})
    result = dora("graph", str(yml), "--html").wait(30)
    assert result.returncode == 0, result.output
    html_path = tmp_path / "dataflow.html"
    assert html_path.is_file() and "wrote" in result.stderr
    return html_path, layout(load_dataflow(yml))


def test_page_is_self_contained(page: tuple[Path, Layout]) -> None:
    text = page[0].read_text()
    # No script, stylesheet, font or image from anywhere: the page must open offline.
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", text)
    assert "@import" not in text and "<script" not in text and "url(http" not in text


def test_browser_renders_every_node_and_link(page: tuple[Path, Layout]) -> None:
    html_path, lay = page
    dom = _chromium("--dump-dom", html_path.as_uri())
    assert dom.returncode == 0, dom.stderr.decode(errors="replace")[-2000:]
    found = _Elements()
    found.feed(dom.stdout.decode())
    flow_nodes = {"camera", "lidar", "perception", "fuse", "planner", "controller", "dashboard"}
    drawn = {n["data-id"] for n in found.nodes}
    assert flow_nodes <= drawn and {d for d in drawn if d.startswith("timer:")} == {
        "timer:robot:dora/timer/millis/33",
        "timer:robot:dora/timer/millis/100",
        "timer:robot:dora/timer/millis/10",
    }
    edges = {(e["data-source"], e["data-target"], e["data-label"]) for e in found.edges}
    assert edges == _expected_edges(lay)
    assert ("perception", "fuse", "track/tracks as tracks") in edges and ("planner", "fuse", "plan") in edges
    assert found.machines == ["robot", "gpu", "laptop"]


def test_screenshot_shows_boxes_labels_and_strokes(page: tuple[Path, Layout], tmp_path: Path) -> None:
    html_path, lay = page
    # The SVG alone, so that its origin is the screenshot's.
    svg = re.search(r"<svg.*</svg>", html_path.read_text(), re.S)
    assert svg is not None
    (tmp_path / "graph.svg").write_text(svg.group(0))
    shot = tmp_path / "graph.png"
    done = _chromium(
        f"--screenshot={shot}",
        f"--window-size={int(lay.width) + 1},{int(lay.height) + 1}",
        (tmp_path / "graph.svg").as_uri(),
    )
    assert done.returncode == 0 and shot.is_file(), done.stderr.decode(errors="replace")[-2000:]
    img = _read_png(shot.read_bytes())
    assert img[0] >= lay.width
    for box in lay.boxes.values():
        if box.kind == "waypoint":
            continue
        got = _pixel(img, box.x + 5, box.y + box.h / 2)
        assert all(abs(a - b) <= 6 for a, b in zip(got, FILL[box.kind])), (box.key, got)
    for lk in lay.links:
        s, t = lay.boxes[lk.source], lay.boxes[lk.target]
        if lk.source == lk.target or lk.back:
            continue
        # The label sits halfway along the first stretch: white with dark text inside.
        first = lay.boxes[lk.via[0]] if lk.via else t
        x1, y1, x2, y2 = s.x + s.w, s.y + s.h / 2, first.x, first.y + (first.h / 2 if not lk.via else 0)
        assert _darkest_near(img, (x1 + x2) / 2, (y1 + y2) / 2, 4) < 140, lk
        # The stroke leaves the source box at its right edge.
        assert _darkest_near(img, x1 + 2, y1, 2) < 170, lk


def test_mermaid_is_the_default_and_open_hands_the_page_to_a_browser(dora, tmp_path: Path) -> None:
    yml = write_dataflow(
        tmp_path,
        FLOW,
        files={
            "node.py": "print('x')\n",
            "browser.sh": '#!/bin/sh\necho "$1" > "$(dirname "$0")/opened.txt"\n',
        },
    )
    default = dora("graph", str(yml)).wait(30)
    explicit = dora("graph", str(yml), "--mermaid").wait(30)
    assert default.returncode == explicit.returncode == 0, default.output + explicit.output
    assert default.stdout == explicit.stdout and default.stdout.startswith("flowchart TB")
    out = tmp_path / "elsewhere" / "g.html"
    out.parent.mkdir()
    # webbrowser runs $BROWSER with the URL (and waits for it): a script stands in for one.
    opened = dora(
        "graph", str(yml), "--open", "-o", str(out), env={"BROWSER": str(tmp_path / "browser.sh") + " %s"}
    ).wait(30)
    assert opened.returncode == 0, opened.output
    assert out.is_file() and "<svg" in out.read_text()
    assert (tmp_path / "opened.txt").read_text().strip() == out.resolve().as_uri()
