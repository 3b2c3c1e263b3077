"""deploy/Dockerfile without Docker: a small parser and the rules the image must keep.

The one thing a lint cannot see, that the files it copies are enough to install the
package, is checked by building an sdist from exactly those files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from ._compose import DOCKERFILE, REPO


def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, with comments dropped and ``\\`` continuations joined."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        found.append((keyword.upper(), " ".join(args.split())))
    assert not pending, "dangling line continuation"
    return found


@pytest.fixture(scope="module")
def steps() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def _all(steps: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for k, args in steps if k == keyword]


def test_base_image_and_package_install(steps: list[tuple[str, str]]) -> None:
    # The base is an argument (a local image where no registry is reachable), python by default.
    assert steps[0] == ("ARG", "BASE_IMAGE=python:3.11-slim")
    assert steps[1] == ("FROM", "${BASE_IMAGE}")
    copies = _all(steps, "COPY")
    assert "pyproject.toml README.md ./" in copies
    assert "dora_zmq/ dora_zmq/" in copies
    assert any("pip install ." in run for run in _all(steps, "RUN"))


def test_runs_as_non_root_with_the_mount_point(steps: list[tuple[str, str]]) -> None:
    users = _all(steps, "USER")
    assert users and users[-1] not in ("root", "0"), users
    keywords = [k for k, _ in steps]
    install = next(i for i, (k, a) in enumerate(steps) if k == "RUN" and "pip install ." in a)
    assert keywords.index("USER") > install, "install as root, then drop privileges"
    assert _all(steps, "WORKDIR")[-1] == "/app/dataflows"
    assert any("/app/dataflows" in run and "chown" in run for run in _all(steps, "RUN"))


def test_default_command_is_the_cli_help(steps: list[tuple[str, str]]) -> None:
    assert json.loads(_all(steps, "CMD")[-1]) == ["dora-zmq", "--help"]
    assert "53290" in _all(steps, "EXPOSE")


def test_copied_sources_exist_and_are_not_dockerignored(steps: list[tuple[str, str]]) -> None:
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for copy in _all(steps, "COPY"):
        for source in copy.split()[:-1]:
            assert (REPO / source).exists(), source
            assert source.rstrip("/") not in ignored, f"{source} is in .dockerignore"


def test_copied_files_are_enough_to_build_the_package(tmp_path: Path, steps: list[tuple[str, str]]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for copy in _all(steps, "COPY"):
        *sources, dest = copy.split()
        for source in sources:
            target = src / (dest if dest != "./" else Path(source).name)
            if (REPO / source).is_dir():
                shutil.copytree(REPO / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(REPO / source, target)
    # An sdist needs no `wheel` package nor network; it reads pyproject, README and the version.
    build = subprocess.run(
        [sys.executable, "-c", "from setuptools import build_meta as b; print(b.build_sdist('dist'))"],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    sdist = src / "dist" / build.stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
        entry_points = next(n for n in names if n.endswith("egg-info/entry_points.txt"))
        text = tar.extractfile(entry_points).read().decode()  # type: ignore[union-attr]
    assert any(n.endswith("dora_zmq/cli/_commands.py") for n in names)
    assert "dora-zmq = dora_zmq.cli:main" in text
