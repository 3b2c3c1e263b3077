"""The writer's files: segments (one large message each) and slabs (slots for smaller ones).

A file in the segment directory is created once, sized, mapped read-write with its pages
populated (a tmpfs page costs a fault and zeroing on first touch, about 0.4 ms per 512 KiB
here), and then reused for message after message. A message's memory is a :class:`Region`:
a whole segment file, or one slot of a :class:`Slab` file, so that a burst of 40 KiB values
does not create (and zero) one file per message.

Nothing here takes a lock; :class:`~dora_zmq._shm.SegmentPool` owns every object and its state.
"""

from __future__ import annotations

import logging
import mmap
import os
from collections.abc import Callable, Hashable

import pyarrow as pa

from ._layout import MIB

__all__ = ["Region", "SampleOwner", "Slab", "create_file", "destroy_file", "slab_slots"]

log = logging.getLogger(__name__)

_MAP_POPULATE = getattr(mmap, "MAP_POPULATE", 0)
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
#: Regions of at most this size are slots of slabs; larger ones get a file each.
SLOT_MAX = MIB
#: A slab's target size: small enough to create in about a millisecond, large enough that a
#: burst of small values needs few of them.
_SLAB_BYTES = 4 * MIB


def slab_slots(slot_size: int, max_bytes: int) -> int:
    """How many slots of ``slot_size`` a new slab gets (at least one; a quarter of the budget at most)."""
    return max(1, min(_SLAB_BYTES // slot_size, (max_bytes // 4) // slot_size))


class SampleOwner:
    """Base object of an output sample's views: alive exactly while one of them is.

    It exposes ``nbytes`` at ``address`` (memory kept alive by ``export``) to NumPy as a
    writable ``uint8`` array whose ``base`` it is.
    """

    __slots__ = ("export", "__array_interface__", "__weakref__")

    def __init__(self, export: pa.Buffer, address: int, nbytes: int) -> None:
        self.export = export  # pins the mapping while views exist
        self.__array_interface__ = {"shape": (nbytes,), "typestr": "|u1", "data": (address, False), "version": 3}


class _File:
    """A mapped file of the segment directory (a segment, or a slab)."""

    __slots__ = ("name", "path", "size", "mm", "last_used")

    def __init__(self, name: str, path: str, size: int, mm: mmap.mmap) -> None:
        self.name = name
        self.path = path
        self.size = size
        self.mm = mm
        self.last_used = 0


class Slab(_File):
    """A file cut into equal slots, each a :class:`Region` holding one message at a time."""

    __slots__ = ("slots",)

    def __init__(self, name: str, path: str, size: int, mm: mmap.mmap, slot_size: int) -> None:
        super().__init__(name, path, size, mm)
        self.slots = [Region(name, path, slot_size, mm, i * slot_size, self) for i in range(size // slot_size)]

    def idle(self) -> bool:
        """Whether no slot holds a message (the slab may then be removed)."""
        return all(r.token is None and not r.writing for r in self.slots)


class Region(_File):
    """The memory of one message: a whole segment file, or a slot of ``slab`` at ``base``.

    ``size`` is the region's size; ``header_at`` where the current message's header was
    written (absolute in ``mm``), so that freeing the region can invalidate exactly it.
    """

    __slots__ = ("base", "slab", "token", "readers", "writing", "export", "published", "header_at")

    def __init__(self, name: str, path: str, size: int, mm: mmap.mmap, base: int = 0, slab: Slab | None = None) -> None:
        super().__init__(name, path, size, mm)
        self.base = base
        self.slab = slab
        self.token: int | None = None
        self.readers: set[Hashable] = set()
        self.writing = False
        self.export: pa.Buffer | None = None  # a writable view, made for output samples only
        self.published = False  # a reservation sent already (it is sent once)
        self.header_at: int | None = None


def create_file(directory: str, next_name: Callable[[], str], size: int) -> tuple[str, str, mmap.mmap]:
    """Create, size and map a new file of ``size`` bytes: ``(name, path, mapping)``.

    ``next_name`` is asked again when a name is taken (left by an earlier process with the
    same pid). This takes milliseconds: never call it with a lock held.
    """
    while True:
        name = next_name()
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, _OPEN_FLAGS, 0o600)
            break
        except FileExistsError:
            continue
    try:
        os.ftruncate(fd, size)
        mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED | _MAP_POPULATE)
    except BaseException:
        os.unlink(path)
        raise
    finally:
        os.close(fd)
    log.debug("created shared-memory file %s (%d B)", name, size)
    return name, path, mm


def destroy_file(f: Region | Slab) -> None:
    """Unlink and unmap a segment or a slab (readers that mapped it keep their memory)."""
    try:
        os.unlink(f.path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not unlink shared-memory segment %s: %s", f.path, exc)
    for region in f.slots if isinstance(f, Slab) else (f,):
        region.export = None
    try:
        f.mm.close()
    except BufferError:
        pass  # a buffer export is still alive; the mapping goes with it
