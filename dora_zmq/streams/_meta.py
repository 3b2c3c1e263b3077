"""What travels through a pipeline: ``StreamData`` (a payload) and its ``StreamMeta`` (tagged metainfo).

Each gizmo that learns something about a data element (a resize factor, an inference
result…) appends it to the element's ``StreamMeta`` under one or more tags, so gizmos
further down, or the user, find it again with ``find(tag)`` / ``find_last(tag)``.

Never modify a received ``StreamMeta`` or the objects stored in it in place: the same
instance may be shared with other branches of the pipeline (fan-out delivers one object
to every consumer). ``clone()`` it first, then append to the clone.

``to_records()`` / ``from_records()`` turn a ``StreamMeta`` into plain JSON-able data and
back, so a node bridge can carry it across processes inside message metadata.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence, Set
from typing import Any

from .._errors import ProtocolError

__all__ = ["StreamData", "StreamMeta", "Tags"]

log = logging.getLogger(__name__)

Tags = Hashable | Sequence[Hashable]
"""One tag, or a list (any non-string sequence) of tags. A tag is usually a str; as in
DeGirum's toolkit any hashable object works (an int, an enum member...)."""


def _normalize_tags(tags: Tags) -> tuple[Hashable, ...]:
    """Turn a tag or a sequence of tags into a tuple of unique tags, in order.

    Raises:
        TypeError: a tag is not hashable.
    """
    if isinstance(tags, (str, bytes)) or not isinstance(tags, (Sequence, Set)):
        items: Iterable[object] = (tags,)
    else:
        items = tags
    out: list[Hashable] = []
    for tag in items:
        if not isinstance(tag, Hashable):
            raise TypeError(f"a StreamMeta tag must be hashable (usually a str), not {type(tag).__name__}: {tag!r}")
        if tag not in out:  # a tag listed twice must not make find() return the object twice
            out.append(tag)
    return tuple(out)


class StreamMeta:
    """A chronological list of metainfo objects, each labelled with zero or more tags.

    Internally it keeps the appended objects and an index from each tag to the positions
    of its objects, so lookups by tag do not scan the list. ``remove_last(tag)`` takes the
    object out of that one tag's index only, as DeGirum's toolkit does.

    Args:
        meta: initial metainfo object; ``None`` (the default) starts empty.
        tags: tag or list of tags for the initial object.

    Example:
        >>> m = StreamMeta({"w": 640}, "Resize")
        >>> m.append({"boxes": []}, ["Inference", "Detection"])
        >>> m.find_last("Inference")
        {'boxes': []}
    """

    __slots__ = ("_entries", "_index")

    def __init__(self, meta: Any = None, tags: Tags = ()) -> None:
        self._entries: list[tuple[Any, tuple[Hashable, ...]]] = []
        self._index: dict[Hashable, list[int]] = {}
        if meta is not None:
            self.append(meta, tags)

    def append(self, meta: Any, tags: Tags = ()) -> None:
        """Append a metainfo object at the tail and label it with tags.

        Args:
            meta: the metainfo object to append (stored by reference, not copied).
            tags: tag or list of tags to associate with it.

        Raises:
            TypeError: a tag is not hashable.
        """
        normalized = _normalize_tags(tags)
        position = len(self._entries)
        self._entries.append((meta, normalized))
        for tag in normalized:
            self._index.setdefault(tag, []).append(position)

    def find(self, tag: Hashable) -> list[Any]:
        """Find every metainfo object labelled with a tag.

        Args:
            tag: the tag to search for.

        Returns:
            The matching objects in the order they were appended; empty if none.
        """
        return [self._entries[i][0] for i in self._index.get(tag, ())]

    def find_last(self, tag: Hashable) -> Any | None:
        """Find the most recently appended metainfo object labelled with a tag.

        Args:
            tag: the tag to search for.

        Returns:
            The last matching object, or ``None`` if no object has this tag.
        """
        positions = self._index.get(tag)
        return self._entries[positions[-1]][0] if positions else None

    def get(self, idx: int) -> Any:
        """Get a metainfo object by its position in the chronological list.

        Args:
            idx: the position (negative counts from the end, like a list).

        Returns:
            The object at that position.

        Raises:
            IndexError: there is no such position.
        """
        return self._entries[idx][0]

    def remove_last(self, tag: Hashable) -> None:
        """Forget the most recently appended metainfo object labelled with a tag.

        Only the label goes: the object is no longer found under ``tag`` (the previous
        object with that tag, if any, becomes the last), but it keeps its place in the
        list and every other tag it has. Nothing happens if no object has this tag.

        Args:
            tag: the tag whose last object is removed.
        """
        positions = self._index.get(tag)
        if not positions:
            return
        position = positions.pop()
        if not positions:
            del self._index[tag]
        meta, tags = self._entries[position]
        self._entries[position] = (meta, tuple(t for t in tags if t != tag))  # a new tuple: clones share the old

    def clone(self) -> StreamMeta:
        """Shallow-clone this StreamMeta.

        The entry list and the tag index are copied, so appending to or removing from the
        clone leaves this instance untouched; the metainfo objects themselves are shared.

        Returns:
            The new StreamMeta.
        """
        twin = StreamMeta()
        twin._entries = list(self._entries)
        twin._index = {tag: list(positions) for tag, positions in self._index.items()}
        return twin

    def to_records(self) -> list[dict[str, Any]]:
        """Convert to a JSON-serialisable list of ``{"tags": [...], "meta": obj}`` records.

        Objects that ``json.dumps`` rejects are skipped (logged at DEBUG), since they could
        not cross a process boundary anyway; the others are kept as they are, not copied.
        Only string tags are kept.

        Returns:
            One record per kept entry, in order.
        """
        records: list[dict[str, Any]] = []
        for meta, tags in self:
            try:
                json.dumps(meta)
            except (TypeError, ValueError) as exc:
                log.debug("StreamMeta entry with tags %s skipped, not JSON-serialisable: %s", tags, exc)
                continue
            records.append({"tags": [t for t in tags if isinstance(t, str)], "meta": meta})
        return records

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> StreamMeta:
        """Build a StreamMeta from records made by ``to_records()``.

        Args:
            records: an iterable of ``{"tags": [...], "meta": obj}`` mappings.

        Returns:
            A StreamMeta with one entry per record, in order.

        Raises:
            ProtocolError: a record is not a mapping, lacks ``tags`` or ``meta``, or has
                tags that are not a list of strings.
        """
        result = cls()
        for number, record in enumerate(records):
            if not isinstance(record, Mapping) or "meta" not in record or "tags" not in record:
                raise ProtocolError(f"StreamMeta record {number} is not a {{'tags', 'meta'}} mapping: {record!r}")
            tags = record["tags"]
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise ProtocolError(f"StreamMeta record {number}: 'tags' must be a list of str, got {tags!r}")
            result.append(record["meta"], tags)
        return result

    def __len__(self) -> int:
        """Number of metainfo objects held."""
        return len(self._entries)

    def __iter__(self) -> Iterator[tuple[Any, list[Hashable]]]:
        """Iterate over ``(meta, tags)`` pairs in the order they were appended."""
        return ((meta, list(tags)) for meta, tags in list(self._entries))

    def __repr__(self) -> str:
        inner = ", ".join(f"{tags!r}: {meta!r}" for meta, tags in self)
        return f"StreamMeta([{inner}])"


class StreamData:
    """A single data element of a streaming pipeline: a payload plus its metainfo.

    Args:
        data: the payload (an image, a frame, any object).
        meta: its metainfo; ``None`` (the default) gives a new, empty ``StreamMeta``.
            (The default is never shared between elements.)
    """

    __slots__ = ("data", "meta")

    def __init__(self, data: Any, meta: StreamMeta | None = None) -> None:
        self.data = data
        self.meta = StreamMeta() if meta is None else meta

    def append_meta(self, meta: Any, tags: Tags = ()) -> None:
        """Append a metainfo object to this element's ``StreamMeta``.

        Args:
            meta: the metainfo object to append.
            tags: tag or list of tags to associate with it.
        """
        self.meta.append(meta, tags)

    def __repr__(self) -> str:
        return f"StreamData({self.data!r}, {self.meta!r})"
