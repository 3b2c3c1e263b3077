"""Arrow arrays whose layout lies about their buffers, and IPC bodies edited to lie.

Shared by the unit tests of the decoders and by node scripts of the end-to-end tests (which
copy this file next to them). Each array here is built through pyarrow's public API, which does
not validate ``from_buffers``: a sender needs no byte-level forging to make them. Reading a
value of any of them unvalidated reads far outside its buffers (a crash, or someone else's
memory).
"""

from __future__ import annotations

import struct

import pyarrow as pa


def invalid_arrays(data_size: int = 16) -> dict[str, pa.Array]:
    """Arrays that ``validate(full=True)`` rejects; ``data_size`` sizes the string data buffer
    (make it large to push the array over the shared-memory threshold)."""
    data = pa.py_buffer(b"x" * data_size)
    return {
        # string offsets [0, 2e9, n]: value 0 claims two gigabytes of a small buffer
        "string_offsets": pa.Array.from_buffers(
            pa.string(), 2, [None, pa.py_buffer(struct.pack("<3i", 0, 2_000_000_000, data_size)), data]
        ),
        # list offsets that run past the child array (non-monotonic, so from_buffers lets it by)
        "list_offsets": pa.Array.from_buffers(
            pa.list_(pa.int64()),
            2,
            [None, pa.py_buffer(struct.pack("<3i", 0, 50_000, 2))],
            children=[pa.array([1, 2], pa.int64())],
        ),
        # dictionary indices far outside the dictionary
        "dictionary_index": pa.DictionaryArray.from_arrays(
            pa.Array.from_buffers(pa.int32(), 2, [None, pa.py_buffer(struct.pack("<2i", 0, 99_999))]),
            pa.array(["a"]),
            safe=False,
        ),
        # a validity bitmap that does not match the null count it comes with
        "validity_bitmap": pa.Array.from_buffers(
            pa.string(),
            16,
            [pa.py_buffer(b"\xff\x00"), pa.py_buffer(bytes(68)), pa.py_buffer(b"")],
            null_count=3,
        ),
    }


def list_child_longer_than_its_buffer(body: bytes) -> bytes:
    """Edit the record batch message of ``pa.array([[1, 2, 3]], pa.list_(pa.int64()))``: the
    child's field node says 1,000 values, its buffer holds 3 (what no public API can make)."""
    node = struct.pack("<qq", 3, 0)  # the child's FieldNode: length 3, null count 0
    at = body.find(node)
    assert at >= 0, "the child's field node was not found"
    return body[:at] + struct.pack("<qq", 1000, 0) + body[at + len(node) :]
