"""Unpack a bundle into a new folder, treating the archive as hostile.

A bundle arrives over the network from whoever could reach the coordinator, so its digest
matching proves only that it was not damaged on the way, not that its sender meant well.
The unpacker therefore writes only what a packed folder can hold and refuses the whole
archive at the first entry that is anything else:

- only regular files and folders: no symlinks, hard links, devices, pipes or sparse files;
- names relative and clean: no absolute path, no ``..`` or ``.`` component, no empty one,
  no NUL, at most 255 bytes a component and 4096 in all, each name once;
- at most ``max_entries`` entries and ``max_bytes`` of content, counted as bytes are
  actually written (a header lying about a size, or a gzip bomb, stops at the limit);
- permissions reduced to 0644 / 0755 (no setuid, no group or world write);
- every file created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` inside a folder this function
  made, so nothing outside ``dest`` can be reached even through a race.

A refused archive leaves nothing behind: ``dest`` is removed.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import zlib
from pathlib import Path
from typing import IO

from .._errors import BundleError
from ._transfer import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES

__all__ = ["unpack_bundle"]

_MAX_NAME = 4096
_MAX_COMPONENT = 255
_COPY = 1024 * 1024


def unpack_bundle(
    archive: Path | IO[bytes],
    dest: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> int:
    """Unpack the ``tar.gz`` at ``archive`` into ``dest`` (which must not exist); returns the file count.

    Raises:
        BundleError: the archive is corrupt, over a limit, or holds anything but clean
            relative files and folders (nothing is left at ``dest`` then).
    """
    dest = Path(dest)
    try:
        os.mkdir(dest, 0o755)
    except OSError as exc:
        raise BundleError(f"cannot unpack into {dest}: {exc}") from exc
    try:
        if isinstance(archive, Path):
            with open(archive, "rb") as f:
                return _extract(f, dest, max_bytes, max_entries)
        return _extract(archive, dest, max_bytes, max_entries)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _extract(fileobj: IO[bytes], dest: Path, max_bytes: int, max_entries: int) -> int:
    seen: set[str] = set()
    written = 0
    files = 0
    try:
        # Streaming mode ("r|gz"): members are read in order, once; nothing seeks back.
        with tarfile.open(fileobj=fileobj, mode="r|gz") as tar:
            for member in tar:
                if len(seen) >= max_entries:
                    raise BundleError(f"bundle refused: more than {max_entries} entries")
                parts = _clean_name(member.name)
                name = "/".join(parts)
                if name in seen:
                    raise BundleError(f"bundle refused: {name!r} appears twice")
                seen.add(name)
                if member.isdir():
                    _make_dirs(dest, parts)
                elif member.isreg() and member.type != tarfile.GNUTYPE_SPARSE:
                    if member.size > max_bytes - written:
                        raise BundleError(f"bundle refused: {name!r} would take it over {max_bytes} bytes")
                    source = tar.extractfile(member)
                    if source is None:
                        raise BundleError(f"bundle refused: {name!r} has no content")
                    parent = _make_dirs(dest, parts[:-1])
                    written += _write_file(
                        parent, parts[-1], source, max_bytes - written, 0o755 if member.mode & 0o100 else 0o644
                    )
                    files += 1
                else:
                    raise BundleError(
                        f"bundle refused: {name!r} is {_kind(member)}; only files and folders are shipped"
                    )
    except BundleError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError, UnicodeError, ValueError) as exc:
        raise BundleError(f"bundle refused: not a valid tar.gz ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # noqa: BLE001 - tarfile and gzip parsing hostile bytes raise more
        # than their documented errors (the fuzz test found TypeError from a mangled gzip
        # header): whatever the parser raises, the archive is refused, never the daemon's loop.
        raise BundleError(f"bundle refused: not a valid tar.gz ({type(exc).__name__}: {exc})") from exc
    return files


def _clean_name(raw: object) -> list[str]:
    """The components of a member name, if it is a clean relative path; raises otherwise."""
    if not isinstance(raw, str) or not raw or "\0" in raw or len(raw.encode("utf-8", "surrogateescape")) > _MAX_NAME:
        raise BundleError(f"bundle refused: invalid entry name {str(raw)[:100]!r}")
    if raw.startswith("/"):
        raise BundleError(f"bundle refused: absolute path {raw[:100]!r}")
    parts = raw.rstrip("/").split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise BundleError(
                f"bundle refused: {raw[:100]!r} is not a clean relative path (empty, '.' or '..' component)"
            )
        if len(part.encode("utf-8", "surrogateescape")) > _MAX_COMPONENT:
            raise BundleError(f"bundle refused: a component of {raw[:100]!r} is longer than {_MAX_COMPONENT} bytes")
    return parts


def _make_dirs(dest: Path, parts: list[str]) -> Path:
    """Create ``dest/parts...`` folder by folder, refusing anything that is not a real folder."""
    current = dest
    for part in parts:
        current = current / part
        try:
            os.mkdir(current, 0o755)
        except FileExistsError:
            # Only this function writes under dest and it makes no symlinks, but check anyway:
            # a folder here must be a folder, never a file or a link.
            if not os.path.isdir(current) or os.path.islink(current):
                raise BundleError(f"bundle refused: {current.relative_to(dest)} is both a file and a folder") from None
    return current


def _write_file(parent: Path, name: str, source: IO[bytes], budget: int, mode: int) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(parent / name, flags, mode)
    except FileExistsError:
        raise BundleError(f"bundle refused: {name!r} in {parent.name or '.'} is both a file and a folder") from None
    os.fchmod(fd, mode)  # the umask may have cut the mode
    size = 0
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(_COPY):
            size += len(chunk)
            if size > budget:
                raise BundleError("bundle refused: its content is larger than the size limit")
            out.write(chunk)
    return size


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"a symlink (to {member.linkname[:100]!r})"
    if member.islnk():
        return f"a hard link (to {member.linkname[:100]!r})"
    if member.ischr() or member.isblk():
        return "a device file"
    if member.isfifo():
        return "a named pipe"
    return f"an entry of type {member.type!r}"
