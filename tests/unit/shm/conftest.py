"""Fixtures for the shared-memory tests: every test gets its own dataflow id, and must leave
no segment file of it behind (checked at teardown, then removed so one failure does not leak).
"""

from __future__ import annotations

import gc
import glob
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from dora_zmq._shm import SegmentPool, SegmentReader, ShmDescriptor, cleanup_segments, shm_dir
from dora_zmq._shm._naming import dataflow_tag


def segment_files(dataflow_id: str) -> list[str]:
    """The segment files of ``dataflow_id`` currently in the segment directory."""
    return sorted(glob.glob(os.path.join(shm_dir(), f"dora-zmq-{dataflow_tag(dataflow_id)}-*")))


@pytest.fixture
def dataflow_id() -> Iterator[str]:
    """A fresh dataflow id; teardown fails the test if a segment file of it is left."""
    df = str(uuid.uuid4())
    yield df
    gc.collect()
    left = segment_files(df)
    cleanup_segments(df)
    assert not left, f"segment files left behind: {left}"


@dataclass
class Releases:
    """Descriptors a reader reported as released, in order."""

    seen: list[ShmDescriptor] = field(default_factory=list)

    def __call__(self, desc: ShmDescriptor) -> None:
        self.seen.append(desc)

    def tokens(self) -> list[int]:
        return [d.token for d in self.seen]

    def forward(self, pool: SegmentPool, reader: str = "r") -> int:
        """Hand every reported release to ``pool`` (what the transport will do); how many."""
        n = len(self.seen)
        for desc in self.seen:
            pool.release(desc.token, reader)
        self.seen.clear()
        return n


@pytest.fixture
def releases() -> Releases:
    return Releases()


@pytest.fixture
def make_pool(dataflow_id: str) -> Iterator[Callable[..., SegmentPool]]:
    """Create pools of the test's dataflow; all are closed at teardown."""
    pools: list[SegmentPool] = []

    def make(node: str = "writer", **kwargs: object) -> SegmentPool:
        pool = SegmentPool(dataflow_id, node, **kwargs)  # type: ignore[arg-type]
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


@pytest.fixture
def pool(make_pool: Callable[..., SegmentPool]) -> SegmentPool:
    return make_pool()


@pytest.fixture
def reader(releases: Releases) -> Iterator[SegmentReader]:
    rd = SegmentReader(releases)
    yield rd
    rd.close()
