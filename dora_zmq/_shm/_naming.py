"""Segment file names, where segments live, and removing them in bulk.

A segment is a plain file in ``/dev/shm`` (a tmpfs: the file *is* the shared memory). Its name
says who owns it, so that whoever outlives a node can reclaim its memory without asking it::

    dora-zmq-<dataflow tag>-<node tag>-<writer pid>-<n>

* The dataflow tag has no ``-`` and a fixed position, so one prefix glob finds a dataflow.
* The node tag may contain ``-``; names are parsed from both ends (pid and counter are the last
  two fields), so node ``a`` never matches node ``a-b`` (a plain glob ``...-a-*`` would).
* The writer pid lets :func:`cleanup_stale` remove segments of crashed writers.

Tags are the ids themselves when short and safe, else a readable prefix plus a hash, so two
different ids never share a tag (a truncated prefix alone would let the cleanup of
``flow-1`` remove the segments of ``flow-2``).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from collections.abc import Callable

__all__ = [
    "SEGMENT_PREFIX",
    "SHM_DIR_ENV",
    "SegmentName",
    "cleanup_segments",
    "cleanup_stale",
    "dataflow_tag",
    "is_segment_name",
    "node_tag",
    "parse_segment_name",
    "pid_alive",
    "segment_name",
    "shm_dir",
]

log = logging.getLogger(__name__)

SEGMENT_PREFIX = "dora-zmq-"
#: Environment variable overriding the segment directory (both ends must agree).
SHM_DIR_ENV = "DORA_ZMQ_SHM_DIR"

_NODE_SAFE = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_NOT_NODE_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")
#: What a segment name may look like: checked before any name from the wire touches the file
#: system (no ``/``, no NUL, bounded length).
_NAME_RE = re.compile(r"dora-zmq-[A-Za-z0-9_]+-[A-Za-z0-9_.~-]+-[0-9]{1,10}-[0-9]{1,12}")
_MAX_NAME = 160


def shm_dir() -> str:
    """The directory segments live in: ``$DORA_ZMQ_SHM_DIR``, ``/dev/shm``, or the temp dir."""
    override = os.environ.get(SHM_DIR_ENV)
    if override:
        return override
    if os.path.isdir("/dev/shm"):
        return "/dev/shm"
    import tempfile  # (loads shutil, random...: only where there is no /dev/shm)

    return tempfile.gettempdir()


def _short_hash(text: str, n: int) -> str:
    import hashlib

    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def dataflow_tag(dataflow_id: str) -> str:
    """A short, ``-``-free tag for a dataflow id: up to 8 of its letters/digits + 6 hex of a hash.

    For a UUID this is its first 8 hex digits (recognisable in ``ls /dev/shm``) plus a hash that
    keeps ids with the same prefix apart.
    """
    return f"{_NOT_ALNUM.sub('', dataflow_id)[:8]}_{_short_hash(dataflow_id, 6)}"


def node_tag(node_id: str) -> str:
    """The node id itself when it is 1-32 safe characters, else a safe prefix + ``~`` + hash.

    ``~`` never appears in an unaltered id, so a hashed tag never equals another node's id.
    """
    if _NODE_SAFE.fullmatch(node_id):
        return node_id
    return f"{_NOT_NODE_SAFE.sub('_', node_id)[:20]}~{_short_hash(node_id, 8)}"


def segment_name(dataflow_id: str, node_id: str, pid: int, n: int) -> str:
    """The file name of segment number ``n`` of writer process ``pid`` of ``node_id``."""
    return f"{SEGMENT_PREFIX}{dataflow_tag(dataflow_id)}-{node_tag(node_id)}-{pid}-{n}"


@dataclass(frozen=True, slots=True)
class SegmentName:
    """The parts of a segment file name (tags, not the original ids)."""

    dataflow: str
    node: str
    pid: int
    n: int


def is_segment_name(name: str) -> bool:
    """Whether ``name`` is a well-formed segment file name (safe to join to the directory)."""
    return len(name) <= _MAX_NAME and _NAME_RE.fullmatch(name) is not None


def parse_segment_name(name: str) -> SegmentName | None:
    """Split a segment file name into its parts, or ``None`` if it is not one of ours."""
    if not is_segment_name(name):
        return None
    parts = name[len(SEGMENT_PREFIX) :].split("-")
    if len(parts) < 4:
        return None
    return SegmentName(parts[0], "-".join(parts[1:-2]), int(parts[-2]), int(parts[-1]))


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (in this pid namespace) and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return True  # no /proc: trust kill(0)
    # "pid (comm) S ...": comm may contain spaces and parentheses; the state follows the last ')'
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in (b"Z", b"X")


def _remove(directory: str | os.PathLike[str] | None, keep: Callable[[SegmentName], bool]) -> int:
    base = os.fspath(directory) if directory is not None else shm_dir()
    removed = 0
    try:
        entries = list(os.scandir(base))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not entry.name.startswith(SEGMENT_PREFIX):
            continue
        parsed = parse_segment_name(entry.name)
        if parsed is None or keep(parsed):
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue  # someone else removed it first
        except OSError as exc:
            log.warning("could not remove shared-memory segment %s: %s", entry.path, exc)
            continue
        removed += 1
    if removed:
        log.debug("removed %d shared-memory segment(s) from %s", removed, base)
    return removed


def cleanup_segments(
    dataflow_id: str,
    node: str | None = None,
    *,
    directory: str | os.PathLike[str] | None = None,
) -> int:
    """Remove every segment of a dataflow, or of one node of it.

    Readers that still map a removed segment keep their data (the memory is freed when the last
    mapping goes); only the name disappears. Call it after a node or a dataflow has ended.

    Args:
        dataflow_id: the dataflow whose segments to remove.
        node: only this node's segments, when given.
        directory: the segment directory (default :func:`shm_dir`).

    Returns:
        How many files were removed.
    """
    df = dataflow_tag(dataflow_id)
    nt = node_tag(node) if node is not None else None
    return _remove(directory, lambda s: s.dataflow != df or (nt is not None and s.node != nt))


def cleanup_stale(
    pid_alive: Callable[[int], bool] = pid_alive,
    *,
    dataflow_id: str | None = None,
    directory: str | os.PathLike[str] | None = None,
) -> int:
    """Remove segments whose writer process is dead (crashed without :meth:`SegmentPool.close`).

    Only meaningful where writer pids are in this process's pid namespace: a container sharing
    ``/dev/shm`` but not the pid namespace would see live writers as dead.

    Args:
        pid_alive: tells whether a pid is alive (default: ``kill(pid, 0)``, zombies count dead).
        dataflow_id: only segments of this dataflow, when given.
        directory: the segment directory (default :func:`shm_dir`).

    Returns:
        How many files were removed.
    """
    df = dataflow_tag(dataflow_id) if dataflow_id is not None else None
    return _remove(directory, lambda s: (df is not None and s.dataflow != df) or pid_alive(s.pid))
