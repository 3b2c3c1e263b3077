"""Same-host shared-memory data path: large values cross processes without a socket copy.

Over a socket a 16 MiB value costs several copies (serialise, kernel in, kernel out); through
shared memory it costs one (serialise straight into a mapped segment), and the receiver reads
the Arrow data where it lies. ZeroMQ then carries only a ~80-byte :class:`ShmDescriptor`.
This package is transport-agnostic (no sockets): the node moves the descriptors and tokens.

How the pieces fit (sender ``S``, receivers ``R1``, ``R2`` on the same host)::

    S:  desc = pool.write(value, readers={"R1", "R2"})   # None -> send value on the socket
        send desc.encode() to R1 and R2
    R:  arr = reader.open(ShmDescriptor.decode(raw))      # zero-copy pyarrow.Array
        ... the application drops arr (and its slices) ...
        on_release(desc) fires (any thread) -> send desc.token back to S
    S:  pool.release(token, "R1")                         # free once R1 and R2 released
        pool.reader_gone("R2")                            # R2 crashed: its share is released
        pool.close()                                      # at exit: unlink every segment
    daemon: cleanup_segments(dataflow_id, node)  after a node exits (crashed writers)
            cleanup_segments(dataflow_id)        after a dataflow ends
            cleanup_stale()                      at start (segments of dead writers)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:
    from ._descriptor import DESCRIPTOR_VERSION, ShmDescriptor
    from ._layout import HEADER_SIZE, capacity_for
    from ._naming import (
        SEGMENT_PREFIX,
        cleanup_segments,
        cleanup_stale,
        parse_segment_name,
        pid_alive,
        segment_name,
        shm_dir,
    )
    from ._pool import PoolStats, SampleOwner, SegmentPool
    from ._reader import ReaderStats, SegmentReader

__all__ = [
    "DESCRIPTOR_VERSION",
    "HEADER_SIZE",
    "SEGMENT_PREFIX",
    "PoolStats",
    "ReaderStats",
    "SampleOwner",
    "SegmentPool",
    "SegmentReader",
    "ShmDescriptor",
    "capacity_for",
    "cleanup_segments",
    "cleanup_stale",
    "parse_segment_name",
    "pid_alive",
    "segment_name",
    "shm_dir",
]

# name -> the submodule that defines it, imported on first use (PEP 562): the daemon's cleanup
# (``_naming``) needs neither pyarrow nor the pool.
_LAZY = {
    "DESCRIPTOR_VERSION": "._descriptor",
    "ShmDescriptor": "._descriptor",
    "HEADER_SIZE": "._layout",
    "capacity_for": "._layout",
    "SEGMENT_PREFIX": "._naming",
    "cleanup_segments": "._naming",
    "cleanup_stale": "._naming",
    "parse_segment_name": "._naming",
    "pid_alive": "._naming",
    "segment_name": "._naming",
    "shm_dir": "._naming",
    "PoolStats": "._pool",
    "SampleOwner": "._pool",
    "SegmentPool": "._pool",
    "ReaderStats": "._reader",
    "SegmentReader": "._reader",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
