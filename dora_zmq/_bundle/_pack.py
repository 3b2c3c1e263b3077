"""Pack a dataflow's folder into a bundle: a deterministic ``tar.gz`` named by its sha256.

Deterministic means the same files give the same bytes (sorted entries, no times, owners or
permissions other than the executable bit), so the digest names the content: a second start
of an unchanged folder finds it in the coordinator's and daemons' caches and sends nothing.

What goes in: every regular file under the folder that the ignore rules (``_ignore``) keep,
and the folders that lead to them. A symlink to a file ships that file's content (a model
linked from elsewhere is what the node opens); a symlink to a folder is skipped with a warning
(it may be huge, or loop); sockets, pipes and devices are skipped. The packer runs on the
user's machine (the CLI), in memory: the size limit bounds it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from .._errors import BundleError
from ._ignore import IgnoreRules
from ._transfer import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES

__all__ = ["Bundle", "pack_folder"]

log = logging.getLogger(__name__)

_LARGEST_SHOWN = 8


@dataclass(frozen=True, slots=True)
class Bundle:
    """A packed folder.

    Attributes:
        digest: sha256 of ``data``, lower-case hex: the bundle's name everywhere.
        data: the ``tar.gz`` bytes.
        folder: the folder that was packed.
        files: how many files it holds.
        content_bytes: the sum of their sizes (before compression).
        skipped: what was left out that the user may not expect (folder symlinks, special files).
    """

    digest: str
    data: bytes
    folder: Path
    files: int
    content_bytes: int
    skipped: tuple[str, ...] = field(default=())

    @property
    def size(self) -> int:
        """Bytes of the archive (what travels)."""
        return len(self.data)


@dataclass(frozen=True, slots=True)
class _Entry:
    relative: str
    source: Path
    size: int
    executable: bool


def pack_folder(
    folder: Path,
    *,
    rules: IgnoreRules | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> Bundle:
    """Pack ``folder`` (what its nodes and operators need) into a :class:`Bundle`.

    Args:
        folder: the dataflow's folder (the YAML's).
        rules: what to leave out (default: the defaults plus ``folder/.dora-zmq-ignore``).
        max_bytes: the largest total of file sizes shipped.
        max_entries: the most files and folders shipped.

    Raises:
        BundleError: over a limit (naming the largest files and how to leave them out), or a
            file that cannot be read.
    """
    folder = Path(os.path.abspath(folder))
    if not folder.is_dir():
        raise BundleError(f"cannot ship {folder}: not a folder")
    rules = rules if rules is not None else IgnoreRules.for_folder(folder)
    dirs, files, skipped, complete = _collect(folder, rules, max_bytes, max_entries)
    total = sum(e.size for e in files)
    if total > max_bytes:
        raise BundleError(_too_large(folder, files, total, max_bytes, rules, complete))
    if len(files) + len(dirs) > max_entries:
        raise BundleError(
            f"cannot ship {folder}: {'at least ' if not complete else ''}{len(files)} files and {len(dirs)} folders, "
            f"more than {max_entries}; leave generated files out with patterns in {folder / '.dora-zmq-ignore'} "
            "(gitignore syntax), or put the folder on every machine and use --ship never"
        )
    data = _archive(dirs, files)
    for what in skipped:
        log.warning("not shipped: %s", what)
    return Bundle(hashlib.sha256(data).hexdigest(), data, folder, len(files), total, tuple(skipped))


def _collect(
    folder: Path, rules: IgnoreRules, max_bytes: int, max_entries: int
) -> tuple[list[str], list[_Entry], list[str], bool]:
    """The folders and files to ship, sorted, what was skipped (and why), and whether the walk
    finished: it stops once over a limit (a YAML in a home folder must not mean reading all of it)."""
    dirs: list[str] = []
    files: list[_Entry] = []
    skipped: list[str] = []
    total = 0
    for root, subdirs, names in os.walk(folder, followlinks=False, onerror=_raise):
        if total > max_bytes or len(files) + len(dirs) > max_entries:
            return dirs, files, skipped, False
        base = Path(root)
        rel_root = base.relative_to(folder).as_posix()
        prefix = "" if rel_root == "." else rel_root + "/"
        kept = []
        for d in sorted(subdirs):
            rel = prefix + d
            if rules.ignored(rel, is_dir=True):
                continue
            if (base / d).is_symlink():
                skipped.append(
                    f"{rel} (a symlink to a folder; ship its files by copying them in, or run with --ship never)"
                )
                continue
            kept.append(d)
            dirs.append(rel)
        subdirs[:] = kept
        for name in sorted(names):
            rel = prefix + name
            if rules.ignored(rel, is_dir=False):
                continue
            entry = _file_entry(base / name, rel, skipped)
            if entry is not None:
                files.append(entry)
                total += entry.size
    return sorted(dirs), sorted(files, key=lambda e: e.relative), skipped, True


def _file_entry(path: Path, rel: str, skipped: list[str]) -> _Entry | None:
    try:
        info = path.stat()  # follows a symlink: a linked file ships its content
    except FileNotFoundError:
        skipped.append(f"{rel} (a dangling symlink)")
        return None
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc}") from exc
    if stat.S_ISDIR(info.st_mode):  # os.walk lists symlinks to folders as files
        skipped.append(f"{rel} (a symlink to a folder; ship its files by copying them in, or run with --ship never)")
        return None
    if not stat.S_ISREG(info.st_mode):
        skipped.append(f"{rel} (not a regular file)")
        return None
    return _Entry(rel, path, info.st_size, bool(info.st_mode & stat.S_IXUSR))


def _raise(exc: OSError) -> None:
    raise BundleError(f"cannot read {exc.filename}: {exc.strerror}") from exc


def _archive(dirs: list[str], files: list[_Entry]) -> bytes:
    buf = io.BytesIO()
    # mtime=0 and no file name in the gzip header: the same files give the same bytes.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=6, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for rel in dirs:
                tar.addfile(_info(rel, tarfile.DIRTYPE, 0, 0o755))
            for entry in files:
                try:
                    with open(entry.source, "rb") as f:
                        tar.addfile(
                            _info(entry.relative, tarfile.REGTYPE, entry.size, 0o755 if entry.executable else 0o644), f
                        )
                except OSError as exc:  # removed, unreadable, or shrank while packing
                    raise BundleError(f"cannot pack {entry.source}: {exc}") from exc
    return buf.getvalue()


def _info(name: str, kind: bytes, size: int, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _too_large(
    folder: Path, files: list[_Entry], total: int, max_bytes: int, rules: IgnoreRules, complete: bool
) -> str:
    largest = sorted(files, key=lambda e: e.size, reverse=True)[:_LARGEST_SHOWN]
    listing = "\n".join(f"    {_human(e.size):>9}  {e.relative}" for e in largest)
    where = rules.source or folder / ".dora-zmq-ignore"
    seen = "" if complete else " at least (the rest was not looked at)"
    return (
        f"cannot ship {folder}: its files add up to{seen} {_human(total)}, over the limit of {_human(max_bytes)}. "
        f"Largest files{'' if complete else ' seen'}:\n{listing}\n"
        f"Leave what the nodes do not need out with patterns in {where} (gitignore syntax), raise the limit "
        f"(--ship-max-size or $DORA_ZMQ_SHIP_MAX_SIZE), or put the folder on every machine and use --ship never."
    )


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
