"""Arrow data from a peer is untrusted: what a decoder may raise, and the check before use.

An Arrow IPC message describes its buffers (offsets, lengths, child lengths, validity
bitmaps) and the IPC reader believes it: a string array whose offsets say ``[0, 2000000000,
16]`` is read without complaint, and reading its second value then touches memory two
gigabytes past the frame (a segfault, or a neighbour's heap). A sender does not even need
to forge bytes: ``pyarrow.Array.from_buffers`` builds such arrays and does not check them.
So every value that the IPC reader rebuilt from peer-supplied layout is validated before an
application sees it (:func:`checked`), on the socket path (``_wire``) and the shared-memory
path (``_shm``) alike.

What it costs: ``validate()`` checks buffer sizes against lengths, constant time;
``validate(full=True)`` also walks offsets, dictionary indices and null counts, linear in the
value (about 2.5 ns a string here; the benchmark reports it per message). Flat values (fixed
width, no nulls) sent as bare bytes are rebuilt by the receiver from the frame's own size and
need neither; a flat value read from an IPC stream (shared memory) needs only the cheap one.

Decoders translate :data:`DECODE_ERRORS` into ``ProtocolError`` (a documented promise of
``decode_frames``, ``ShmDescriptor.decode`` and ``SegmentReader.open``): besides the Arrow
errors, crafted input reaches ``EOFError`` and ``NotImplementedError`` (unknown types) in
pyarrow, ``ValueError`` (4,300-digit integers) and ``RecursionError`` (deep nesting) in json.
"""

from __future__ import annotations

import struct

import pyarrow as pa

from ._errors import ProtocolError

__all__ = ["DECODE_ERRORS", "checked"]

#: Everything a decoder of untrusted bytes may raise besides ``ProtocolError``. Not
#: ``MemoryError`` (the reads alias their input and allocate nothing proportional to a claimed
#: size) nor ``KeyboardInterrupt``.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    pa.ArrowException,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    OverflowError,
    EOFError,
    OSError,
    NotImplementedError,
    RecursionError,
    StopIteration,
    struct.error,
)


def checked(value: pa.Array, *, flat: bool = False) -> pa.Array:
    """``value`` once its layout is proven consistent with its buffers.

    Args:
        value: an array rebuilt from a peer's IPC description.
        flat: the value is of a fixed-width type without nulls: only buffer sizes can lie,
            which the cheap structural check covers.

    Raises:
        ProtocolError: the array's buffers do not hold what its layout claims.
    """
    try:
        if flat:
            value.validate()
        else:
            value.validate(full=True)
    except DECODE_ERRORS as exc:
        raise ProtocolError(f"invalid Arrow {value.type} array: {exc}") from exc
    return value
