"""A bounded cache: a dict that forgets everything once it holds ``limit`` entries.

The caches of derived values (Arrow schemas, encoded span heads, shared-memory mappings) are keyed
by what peers send, so a peer could grow them without end. Clearing the whole dict when full is
cheaper than LRU bookkeeping on the hot path (a lookup stays one ``dict.get``) and a working set
smaller than the bound never pays it.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(dict[K, V]):
    """A ``dict`` whose :meth:`put` clears it first when it already holds ``limit`` entries.

    Read with ``cache.get(key)`` (as fast as a plain dict); write with :meth:`put`. Owned by one
    thread, or guarded by its owner's lock: it adds no locking of its own.
    """

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        if limit < 1:
            raise ValueError(f"a cache needs room for one entry at least, not {limit}")
        self.limit = limit

    def put(self, key: K, value: V) -> V:
        """Store ``value`` under ``key`` (after forgetting everything if full) and return it."""
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value
