"""Packing a dataflow folder: what goes in, determinism, and the size limit's message."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from dora_zmq._bundle import IgnoreRules, pack_folder
from dora_zmq._errors import BundleError


def _names(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def _tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body.encode() if isinstance(body, str) else body)
    return root


def test_same_files_same_digest_and_any_change_another(tmp_path: Path) -> None:
    a = _tree(tmp_path / "a", {"flow.yml": "nodes: []\n", "n.py": "print(1)\n", "sub/x.txt": "x"})
    b = _tree(tmp_path / "b", {"sub/x.txt": "x", "n.py": "print(1)\n", "flow.yml": "nodes: []\n"})
    os.utime(b / "n.py", (1, 1))  # times are not part of the content
    assert pack_folder(a).digest == pack_folder(b).digest
    (b / "n.py").write_text("print(2)\n")
    assert pack_folder(a).digest != pack_folder(b).digest


def test_defaults_leave_out_vcs_caches_venvs_and_out(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "flow.yml": "",
            "node.py": "",
            ".git/HEAD": "",
            "__pycache__/node.cpython-311.pyc": "",
            "lib/mod.pyc": "",
            ".venv311/bin/python": "",
            "out/abc/log_node.txt": "",
            "models/out/keep.txt": "",
        },
    )
    names = _names(pack_folder(tmp_path).data)
    assert "node.py" in names and "flow.yml" in names
    assert "models/out/keep.txt" in names  # only the top-level out/ is the runs' log folder
    for left_out in (
        ".git/HEAD",
        "__pycache__/node.cpython-311.pyc",
        "lib/mod.pyc",
        ".venv311/bin/python",
        "out/abc/log_node.txt",
    ):
        assert left_out not in names


def test_ignore_file_adds_patterns_and_can_re_include(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "flow.yml": "",
            "data/big.bin": "x",
            "data/small.txt": "y",
            "out/baseline.txt": "z",
            ".dora-zmq-ignore": "# comment\ndata/*.bin\n!out/\nout/*\n!out/baseline.txt\n",
        },
    )
    names = _names(pack_folder(tmp_path).data)
    assert "data/small.txt" in names and "data/big.bin" not in names
    assert "out/baseline.txt" in names


def test_executable_bit_kept_and_nothing_else(tmp_path: Path) -> None:
    _tree(tmp_path, {"tool.sh": "#!/bin/sh\n", "plain.txt": ""})
    os.chmod(tmp_path / "tool.sh", 0o4775)
    os.chmod(tmp_path / "plain.txt", 0o666)
    names = _names(pack_folder(tmp_path).data)
    assert names["tool.sh"].mode == 0o755 and names["plain.txt"].mode == 0o644
    assert names["tool.sh"].uid == 0 and names["tool.sh"].mtime == 0


def test_file_symlink_ships_content_folder_symlink_is_skipped(tmp_path: Path) -> None:
    outside = _tree(tmp_path / "elsewhere", {"model.pt": "weights", "lib/a.py": ""})
    flow = _tree(tmp_path / "flow", {"flow.yml": ""})
    (flow / "model.pt").symlink_to(outside / "model.pt")
    (flow / "lib").symlink_to(outside / "lib")
    (flow / "dangling").symlink_to(tmp_path / "nothing")
    bundle = pack_folder(flow)
    names = _names(bundle.data)
    assert names["model.pt"].isreg() and names["model.pt"].size == len("weights")
    assert "lib" not in names and "lib/a.py" not in names and "dangling" not in names
    assert any(s.startswith("lib ") for s in bundle.skipped) and any(s.startswith("dangling ") for s in bundle.skipped)


def test_over_the_limit_names_the_largest_files(tmp_path: Path) -> None:
    _tree(tmp_path, {"flow.yml": "", "weights/huge.onnx": b"\0" * 5000, "video.mp4": b"\0" * 3000, "small.py": "x"})
    with pytest.raises(BundleError) as info:
        pack_folder(tmp_path, max_bytes=4096)
    text = str(info.value)
    assert "over the limit" in text and "weights/huge.onnx" in text and "video.mp4" in text
    assert text.index("weights/huge.onnx") < text.index("video.mp4")  # largest first
    assert ".dora-zmq-ignore" in text and "--ship-max-size" in text


def test_too_many_entries(tmp_path: Path) -> None:
    _tree(tmp_path, {f"f{i}.txt": "" for i in range(10)})
    with pytest.raises(BundleError, match="more than 5"):
        pack_folder(tmp_path, max_entries=5)


def test_bad_ignore_pattern_is_a_bundle_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="invalid ignore pattern"):
        IgnoreRules.from_patterns(["a/**b/[", "!"], tmp_path / ".dora-zmq-ignore")


def test_the_walk_stops_once_over_the_limit(tmp_path: Path) -> None:
    # A YAML in a big folder (a home folder) must not mean reading all of it to say no.
    _tree(tmp_path, {"flow.yml": "", "huge.bin": b"\0" * 5000, "zz/later.bin": b"\0" * 6000})
    with pytest.raises(BundleError) as info:
        pack_folder(tmp_path, max_bytes=4096)
    text = str(info.value)
    assert "at least" in text and "huge.bin" in text and "later.bin" not in text
