"""Generic gizmos that need no domain knowledge: a source, a sink, a map, and a fan-in.

* ``IteratorSourceGizmo`` sends each item of an iterable.
* ``SinkGizmo`` ends a pipeline: read ``sink()`` (or iterate the sink), or collect into ``results``.
* ``FunctionGizmo`` maps each payload through a function (``None`` skips the item).
* ``FanInGizmo`` synchronises several inputs into one list per step.

Each of them stops at the end of its input(s) or when aborted, as ``Gizmo.run()`` asks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final

from ._errors import StreamConfigError
from ._gizmo import Gizmo, InputSpec
from ._meta import StreamData, StreamMeta
from ._stream import Stream

__all__ = [
    "FanInGizmo",
    "FunctionGizmo",
    "IteratorSourceGizmo",
    "SinkGizmo",
    "tag_analyzer",
    "tag_crop",
    "tag_inference",
    "tag_preprocess",
    "tag_resize",
    "tag_video",
]

log = logging.getLogger(__name__)

# DeGirum's standard meta tags, for gizmos written against its toolkit. Only tag_video is
# appended here (by IteratorSourceGizmo); the others are for the user's own gizmos.
tag_video: Final = "dgt_video"
tag_resize: Final = "dgt_resize"
tag_inference: Final = "dgt_inference"
tag_preprocess: Final = "dgt_preprocess"
tag_crop: Final = "dgt_crop"
tag_analyzer: Final = "dgt_analyzer"


def _as_stream_data(item: Any) -> StreamData:
    """Wrap a bare payload in a ``StreamData`` with empty meta; leave a StreamData as it is."""
    return item if isinstance(item, StreamData) else StreamData(item)


class IteratorSourceGizmo(Gizmo):
    """A source that sends every item of an iterable, then ends its outputs.

    A ``StreamData`` item is sent as it is. An image (anything with a ``shape`` of two or
    more dimensions, such as a NumPy array) is sent the way DeGirum's ``IteratorSourceGizmo``
    sends it: a grey image becomes three identical channels, a fourth (alpha) channel is
    cut off, and the meta gets a video record (``frame_width``, ``frame_height``, ``fps``,
    ``frame_count`` -1, ``frame_id``, ``timestamp``, ``file_path`` "") under ``get_tags()``,
    that is the gizmo's name and ``tag_video``. Any other item is wrapped in a
    ``StreamData`` with empty meta (a ``None`` item too: it is not taken as end-of-stream).

    Args:
        iterable: the items to send; iterated once, in the gizmo's thread.
        fps: the frame rate written in the video record (0.0: not applicable).
    """

    def __init__(self, iterable: Iterable[Any], *, fps: float = 0.0) -> None:
        super().__init__()
        self._iterable = iterable
        self._fps = fps

    def get_tags(self) -> list[str]:
        """The gizmo's name and ``tag_video``: the tags of the video record of each image."""
        return [self.name, tag_video]

    def run(self) -> None:
        """Send each item until the iterable is exhausted or the gizmo is aborted."""
        for item in self._iterable:
            if self._abort:
                break
            shape = getattr(item, "shape", None)
            if isinstance(item, StreamData) or not isinstance(shape, tuple) or len(shape) < 2:
                self.send_result(_as_stream_data(item))
                continue
            image = _as_three_channels(item)
            record = {
                "frame_width": shape[1],
                "frame_height": shape[0],
                "fps": self._fps,
                "frame_count": -1,
                "frame_id": self.result_cnt,
                "timestamp": time.time(),
                "file_path": "",
            }
            self.send_result(StreamData(image, StreamMeta(record, self.get_tags())))


def _as_three_channels(image: Any) -> Any:
    """A grey image as three identical channels, a four-channel one without its alpha (NumPy-style)."""
    shape = image.shape
    if len(shape) == 2 and type(image).__module__ == "numpy":
        import numpy as np  # only reached with a NumPy array in hand: the core needs no NumPy

        return np.repeat(np.asarray(image)[:, :, None], 3, axis=2)
    if len(shape) == 3 and shape[2] == 4:
        return image[:, :, :3]
    return image


class SinkGizmo(Gizmo):
    """The end of a pipeline: keeps what it receives for the user to read.

    ``sink()`` returns the stream to read, as in DeGirum's toolkit: ``for item in sink():``
    yields each item until the pipeline ends. Iterating the sink itself (``for item in
    sink``) does the same, and a later loop over the sink ends at once instead of waiting. With
    ``collect=True`` every item is also appended to ``results``.

    By default (no ``collect``, nothing connected after it) the sink's ``run()`` returns at
    once and items wait in its input stream, so a bounded ``stream_depth`` holds back (or,
    with ``allow_drop``, drops) what nobody reads, exactly as in DeGirum's toolkit. With
    ``collect=True``, or gizmos connected after it, the sink's thread drains its input into
    an unbounded stream (and passes each item on to those gizmos).

    Args:
        maxsize: depth of the input stream; 0 (the default) for unlimited.
        allow_drop: drop the oldest input item instead of blocking the producer when full.
        stream_depth: DeGirum's name for ``maxsize``; wins when given.
        collect: append every item to ``results``. Defaults to False.

    Attributes:
        results: the items received in the last run, in order, when ``collect`` is True.
    """

    def __init__(
        self, maxsize: int = 0, allow_drop: bool = False, *, stream_depth: int | None = None, collect: bool = False
    ) -> None:
        super().__init__([(maxsize if stream_depth is None else stream_depth, allow_drop)])
        self.results: list[StreamData] = []
        self._collect = collect
        self._received = Stream()
        self._ended = False  # a loop over the sink saw the end of this run

    def run(self) -> None:
        """Drain the input when collecting or forwarding (see the class docstring); else return."""
        self._ended = False
        if not self._drains():
            return
        self.results.clear()
        self._received.clear()  # drop what a previous run left, its end-of-stream pill included
        try:
            for item in self.get_input(0):
                if self._abort:
                    break
                data = _as_stream_data(item)
                if self._collect:
                    self.results.append(data)
                self._received.put(data)
                if self._output_refs:
                    self.send_result(data)
                else:
                    self.result_cnt += 1  # counted all the same, but the meta gets no timing stamp
        finally:
            self._received.close()

    def __call__(self) -> Stream:
        """The stream to read the received items from, until its end-of-stream pill.

        Returns:
            The sink's input stream, or the stream its thread fills when it drains the input.
        """
        return self._received if self._drains() else self.get_input(0)

    def __iter__(self) -> Iterator[StreamData]:
        """Yield each received item, from any thread, until the pipeline ends.

        A loop that starts after another one saw the end ends at once (until the next run).
        """
        if self._ended:
            return
        yield from self()
        self._ended = True

    def _drains(self) -> bool:
        """True when the sink's thread must read its input (to collect, or to pass items on)."""
        return self._collect or bool(self._output_refs)


class FunctionGizmo(Gizmo):
    """Maps each payload through ``fn``: ``StreamData(fn(data), meta)``.

    The input's meta is kept. With ``append_meta``, the new payload is also appended to
    (a clone of) the meta under the tag ``name``, so later gizmos can ``find_last(name)``.
    When ``fn`` returns ``None`` the item is skipped.

    Args:
        fn: the function applied to each payload (``item.data``).
        name: the gizmo's name, and its meta tag; defaults to the class name.
        input_stream_sizes: the single input's ``(maxsize, allow_drop)``; unlimited by default.
        append_meta: append each result to the meta under the tag ``name``. Defaults to False.

    Raises:
        StreamConfigError: ``input_stream_sizes`` does not describe exactly one input.
    """

    def __init__(
        self,
        fn: Callable[[Any], Any],
        name: str | None = None,
        input_stream_sizes: Sequence[InputSpec] = ((0, False),),
        *,
        append_meta: bool = False,
    ) -> None:
        if len(input_stream_sizes) != 1:
            raise StreamConfigError(f"a FunctionGizmo has exactly one input, got {list(input_stream_sizes)!r}")
        super().__init__(input_stream_sizes)
        if name is not None:
            self.name = name
        self._fn = fn
        self._append_meta = append_meta

    def run(self) -> None:
        """Map items until the input ends or the gizmo is aborted."""
        for item in self.get_input(0):
            if self._abort:
                break
            source = _as_stream_data(item)
            result = self._fn(source.data)
            if result is None:
                log.debug("gizmo '%s' skipped an item: fn returned None", self.name)
                continue
            meta = source.meta
            if self._append_meta:
                meta = meta.clone()  # never modify received meta in place: other branches share it
                meta.append(result, self.name)
            self.send_result(StreamData(result, meta))


class FanInGizmo(Gizmo):
    """Synchronises several inputs: takes one item from each, sends them as one.

    Each step waits for an item on input 0, then input 1, and so on, and sends
    ``StreamData([data of input 0, data of input 1, ...], merged meta)``. The merged
    meta is a clone of input 0's meta with the entries of inputs 1, 2, ... appended in
    input order, each keeping its tags. The gizmo ends as soon as any input ends; it
    then abandons all its inputs (``Stream.abandon()``), so the producers of the others
    do not block on streams it no longer reads.

    Args:
        n_inputs: number of inputs, at least 1.
        maxsize: depth of each input stream; 0 (the default) for unlimited.
        allow_drop: drop the oldest item of a full input instead of blocking its producer.

    Raises:
        StreamConfigError: ``n_inputs`` is below 1.
    """

    def __init__(self, n_inputs: int, maxsize: int = 0, allow_drop: bool = False) -> None:
        if isinstance(n_inputs, bool) or not isinstance(n_inputs, int) or n_inputs < 1:
            raise StreamConfigError(f"a FanInGizmo needs at least one input, got n_inputs={n_inputs!r}")
        super().__init__([(maxsize, allow_drop)] * n_inputs)

    def run(self) -> None:
        """Merge one item per input until any input ends or the gizmo is aborted."""
        try:
            while not self._abort:
                items: list[StreamData] = []
                for stream in self.get_inputs():
                    item = stream.get()
                    if item is Stream._poison:
                        return
                    items.append(_as_stream_data(item))
                self.send_result(_merge(items))
        finally:
            for stream in self.get_inputs():
                stream.abandon()


def _merge(items: list[StreamData]) -> StreamData:
    """Join one item per input into a list payload with merged meta (see ``FanInGizmo``)."""
    meta: StreamMeta = items[0].meta.clone()
    for item in items[1:]:
        for entry, tags in item.meta:
            meta.append(entry, tags)
    return StreamData([item.data for item in items], meta)
