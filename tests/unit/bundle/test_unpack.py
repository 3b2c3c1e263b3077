"""The unpacker against hostile archives: everything refused whole, nothing written outside."""

from __future__ import annotations

import gzip
import io
import os
import random
import stat
import tarfile
from pathlib import Path

import pytest

from dora_zmq._bundle import pack_folder, unpack_bundle
from dora_zmq._errors import BundleError


def _archive(*members: tuple[tarfile.TarInfo, bytes | None], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=fmt) as tar:
        for info, body in members:
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return buf.getvalue()


def _file(name: str, body: bytes = b"x", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(body)
    info.mode = mode
    return info, body


def _entry(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def _unpack(data: bytes, dest: Path, **limits: int) -> int:
    return unpack_bundle(io.BytesIO(data), dest, **limits)


def _everything_under(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


def test_round_trip_of_a_packed_folder(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "flow.yml").write_text("nodes: []\n")
    (src / "pkg" / "tool.sh").write_text("#!/bin/sh\n")
    (src / "pkg" / "tool.sh").chmod(0o755)
    (src / "empty").mkdir()
    bundle = pack_folder(src)
    dest = tmp_path / "dest"
    assert _unpack(bundle.data, dest) == 2
    assert (dest / "flow.yml").read_text() == "nodes: []\n"
    assert os.access(dest / "pkg" / "tool.sh", os.X_OK) and (dest / "empty").is_dir()


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ([_file("/etc/evil")], "absolute path"),
        ([_file("../evil")], "clean relative"),
        ([_file("a/../../evil")], "clean relative"),
        ([_file("a//b")], "clean relative"),
        ([_file("./a")], "clean relative"),
        ([_entry("link", tarfile.SYMTYPE, "/etc/passwd")], "symlink"),
        ([_entry("link", tarfile.SYMTYPE, "inside.txt"), _file("inside.txt")], "symlink"),
        ([_file("a"), _entry("hard", tarfile.LNKTYPE, "a")], "hard link"),
        ([_entry("dev", tarfile.CHRTYPE)], "device"),
        ([_entry("blk", tarfile.BLKTYPE)], "device"),
        ([_entry("fifo", tarfile.FIFOTYPE)], "named pipe"),
        ([_file("a"), _file("a")], "appears twice"),
        ([_file("a"), _file("a/b")], "both a file and a folder"),
        ([_entry("d", tarfile.DIRTYPE), _file("d")], "appears twice"),
        ([_entry("d", tarfile.DIRTYPE), _file("d/")], "appears twice"),
        ([_file("x" * 300)], "longer than 255"),
    ],
)
def test_hostile_entries_refuse_the_whole_archive(tmp_path: Path, members: list, why: str) -> None:
    dest = tmp_path / "dest"
    with pytest.raises(BundleError, match=why):
        _unpack(_archive(_file("ok.txt"), *members), dest)
    assert not dest.exists()  # nothing half-written is left
    assert _everything_under(tmp_path) == set()


def test_a_symlink_then_a_file_through_it_cannot_escape(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    data = _archive(_entry("up", tarfile.SYMTYPE, str(outside)), _file("up/pwned"))
    with pytest.raises(BundleError):
        _unpack(data, tmp_path / "dest")
    assert list(outside.iterdir()) == []


def test_permissions_are_reduced(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    _unpack(_archive(_file("suid", mode=0o6777), _file("plain", mode=0o666)), dest)
    assert stat.S_IMODE((dest / "suid").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "plain").stat().st_mode) == 0o644


def test_entry_and_size_limits(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="more than 3 entries"):
        _unpack(_archive(*[_file(f"f{i}") for i in range(5)]), tmp_path / "a", max_entries=3)
    with pytest.raises(BundleError, match="over 100 bytes"):
        _unpack(_archive(_file("big", b"y" * 101)), tmp_path / "b", max_bytes=100)
    with pytest.raises(BundleError, match="over 150 bytes"):
        _unpack(_archive(_file("one", b"y" * 100), _file("two", b"y" * 100)), tmp_path / "c", max_bytes=150)


def test_a_gzip_bomb_stops_at_the_limit(tmp_path: Path) -> None:
    # 64 MiB of zeros compress to about 64 KiB: the limit is on what is written, not what arrives.
    data = _archive(_file("zeros", b"\0" * (64 * 1024 * 1024)))
    assert len(data) < 200_000
    with pytest.raises(BundleError):
        _unpack(data, tmp_path / "dest", max_bytes=1024 * 1024)
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("data", [b"", b"not an archive", gzip.compress(b"not a tar" * 100)])
def test_garbage_is_refused(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(BundleError, match="not a valid tar.gz|refused"):
        _unpack(data, tmp_path / "dest")


def test_truncated_archive_is_refused(tmp_path: Path) -> None:
    data = _archive(_file("a", os.urandom(50_000)), _file("b", b"x"))
    with pytest.raises(BundleError):
        _unpack(data[: len(data) // 2], tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_dest_must_be_new(tmp_path: Path) -> None:
    (tmp_path / "dest").mkdir()
    with pytest.raises(BundleError, match="cannot unpack into"):
        _unpack(_archive(_file("a")), tmp_path / "dest")


@pytest.mark.timeout(60)
def test_fuzzed_archives_never_crash_or_escape(tmp_path: Path) -> None:
    """Mutated bytes of real archives: a BundleError or a clean folder, never anything else."""
    rng = random.Random(1234)
    seeds = [
        _archive(_file("a.py", b"print(1)\n"), _file("d/b.txt", b"hello" * 50), fmt=fmt)
        for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT)
    ]
    # Uncompressed tar bytes mutated, then compressed: reaches the tar parser, not just zlib's checks.
    raw_seeds = [gzip.decompress(s) for s in seeds]
    jail = tmp_path / "jail"
    jail.mkdir()
    for i in range(400):
        raw = bytearray(rng.choice(raw_seeds))
        for _ in range(rng.randint(1, 8)):
            # Mostly in the headers (the first blocks), where names, types and sizes are.
            pos = rng.randrange(len(raw)) if rng.random() < 0.3 else rng.randrange(min(len(raw), 2048))
            raw[pos] = rng.choice([0, 0x2F, 0x2E, 0x31, 0x32, 0x35, rng.randrange(256)])
        data = gzip.compress(bytes(raw)) if i % 4 else bytes(gzip.compress(bytes(raw)))[: rng.randrange(1, 400)]
        dest = jail / f"d{i}"
        try:
            _unpack(data, dest, max_bytes=1 << 20, max_entries=50)
        except BundleError:
            assert not dest.exists()
            continue
        for path in dest.rglob("*"):
            assert not path.is_symlink()
            assert path.is_dir() or path.is_file()
            assert path.resolve().is_relative_to(dest.resolve())
    assert list(tmp_path.iterdir()) == [jail]
