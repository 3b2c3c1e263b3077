"""``OutputSample``: memory for one output message, written in place by the application.

Sending a large value through ``send_output`` copies it once (into shared memory, or into
the socket). A sample lets the application produce the value where it will be read: a camera
frame decoded straight into shared memory reaches a same-host receiver with no copy at all,
which for a 16 MiB frame saves about a millisecond per hop. dora-rs offers the same in Rust
(``allocate_data_sample``).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from .._shm import SampleOwner
from .._wire import byte_width

__all__ = ["OutputSample"]


class OutputSample:
    """Writable memory for one message of ``nbytes`` bytes; get it from ``Node.allocate_output``.

    Fill it through :meth:`numpy` (or :attr:`buffer` / :meth:`as_array` for Arrow), then pass
    the sample, or an array viewing it, to ``send_output``. When the output's receivers all
    run on this machine and the sample is large enough for shared memory (``shared`` is
    True), only a descriptor travels: receivers read this very memory. Otherwise the value is
    sent as a copy, as any other.

    A sample can be sent once; do not write to it after sending (receivers may be reading
    it). Its memory is reused only when every receiver and every view of yours is gone.
    Sending an array shorter than the sample uses up to 64 bytes after it for the Arrow
    stream's padding and end marker. Write through :meth:`numpy`; :attr:`buffer` is a
    read-only Arrow view (for ``pa.Array.from_buffers``).
    """

    __slots__ = ("_owner", "_buffer", "token", "shared", "sent", "__weakref__")

    def __init__(self, owner: Any, buffer: pa.Buffer, token: int | None) -> None:
        self._owner = owner
        self._buffer = buffer
        #: the shared-memory reservation this sample is (None for a heap sample)
        self.token = token
        #: True when it lies in shared memory (a zero-copy send to same-host receivers)
        self.shared = token is not None
        self.sent = False

    @classmethod
    def on_heap(cls, nbytes: int) -> "OutputSample":
        """A sample in ordinary memory (sent as a copy)."""
        buffer = pa.allocate_buffer(nbytes, resizable=False)
        owner = SampleOwner(buffer, buffer.address, nbytes)
        return cls(owner, pa.foreign_buffer(buffer.address, nbytes, base=owner), None)

    def __len__(self) -> int:
        return self.nbytes

    @property
    def nbytes(self) -> int:
        """The sample's size in bytes."""
        size: int = self._buffer.size
        return size

    @property
    def buffer(self) -> pa.Buffer:
        """The memory as a ``pyarrow.Buffer`` (to build arrays with ``pa.Array.from_buffers``)."""
        return self._buffer

    @property
    def address(self) -> int:
        """The address of the first byte."""
        address: int = self._buffer.address
        return address

    def numpy(self, dtype: Any = "uint8", shape: Any = None) -> Any:
        """A writable NumPy view of the memory, of ``dtype`` and optionally ``shape``.

        Raises:
            ValueError: ``nbytes`` is not a multiple of the dtype's size, or ``shape`` does
                not match.
        """
        import numpy as np

        view = np.asarray(self._owner).view(dtype)
        return view if shape is None else view.reshape(shape)

    def as_array(self, type: pa.DataType = pa.uint8()) -> pa.Array:  # noqa: A002 - pyarrow's name
        """The memory as a ``pyarrow.Array`` of a fixed-width ``type`` (no copy).

        Raises:
            ValueError: ``type`` is not fixed-width, or ``nbytes`` is not a multiple of it.
        """
        width = byte_width(type)
        if not width or self.nbytes % width:
            raise ValueError(f"a sample of {self.nbytes} bytes cannot be viewed as {type} (fixed-width types only)")
        return pa.Array.from_buffers(type, self.nbytes // width, [None, self._buffer])

    def __repr__(self) -> str:
        where = "shared memory" if self.shared else "heap"
        return f"<OutputSample {self.nbytes} B in {where}{', sent' if self.sent else ''}>"
