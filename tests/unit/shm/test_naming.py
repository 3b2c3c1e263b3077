"""Segment names, sizes, and bulk removal (per dataflow, per node, of dead writers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable

import pyarrow as pa
import pytest

from dora_zmq._shm import (
    SegmentPool,
    capacity_for,
    cleanup_segments,
    cleanup_stale,
    parse_segment_name,
    pid_alive,
    segment_name,
)
from dora_zmq._shm._naming import dataflow_tag, node_tag

from .conftest import segment_files

MIB = 1 << 20


def test_name_parses_back_even_with_dashes_in_the_node() -> None:
    name = segment_name("3f2a9c1e-1111-2222", "cam-left-2", 123, 9)
    assert name.startswith("dora-zmq-3f2a9c1e_")
    parsed = parse_segment_name(name)
    assert parsed is not None
    assert (parsed.dataflow, parsed.node, parsed.pid, parsed.n) == (
        dataflow_tag("3f2a9c1e-1111-2222"),
        "cam-left-2",
        123,
        9,
    )


def test_tags_are_safe_short_and_distinct() -> None:
    # same 8-character prefix, different ids: different tags
    assert dataflow_tag("dataflow-1") != dataflow_tag("dataflow-2")
    for node in ("a/b", "../x", "é" * 50, "x" * 100, "a b", "~"):
        tag = node_tag(node)
        assert "/" not in tag and len(tag) <= 32 and tag.isascii()
        assert parse_segment_name(segment_name("df", node, 1, 0)) is not None
    assert node_tag("a b") != node_tag("a_b")  # sanitising alone would merge them
    assert len(segment_name(str(uuid.uuid4()), "x" * 100, 4194304, 10**6)) < 80


@pytest.mark.parametrize(
    "name",
    ["dora-zmq-ab", "other-file", "dora-zmq-ab-n-1", "dora-zmq-ab-n-x-1", "dora-zmq-a/b-n-1-1"],
)
def test_foreign_names_are_not_parsed(name: str) -> None:
    assert parse_segment_name(name) is None


def test_capacity_rounding() -> None:
    assert capacity_for(1) == 64 * 1024
    assert capacity_for(64 * 1024 + 1) == 128 * 1024
    assert capacity_for(MIB) == MIB
    assert capacity_for(MIB + 1) == 2 * MIB
    assert capacity_for(16 * MIB + 400) == 17 * MIB  # not 32 MiB
    assert capacity_for(4_096_000 + 400) == 4 * MIB


def _one_segment(pool: SegmentPool) -> None:
    assert pool.write(pa.array([1, 2, 3]), {"r"}) is not None


def test_cleanup_by_node_does_not_touch_prefix_sibling(make_pool: Callable[..., SegmentPool], dataflow_id: str) -> None:
    other_df = str(uuid.uuid4())
    other = SegmentPool(other_df, "a")
    try:
        for pool in (make_pool("a"), make_pool("a-b"), make_pool("c"), other):
            _one_segment(pool)
        assert cleanup_segments(dataflow_id, "a") == 1
        assert len(segment_files(dataflow_id)) == 2  # "a-b" survives "a"
        assert cleanup_segments(dataflow_id, "a-b") == 1
        assert cleanup_segments(dataflow_id) == 1
        assert segment_files(dataflow_id) == []
        assert len(segment_files(other_df)) == 1  # another dataflow is untouched
    finally:
        other.close()
    assert segment_files(other_df) == []


def test_cleanup_stale_uses_pid_alive(make_pool: Callable[..., SegmentPool], dataflow_id: str) -> None:
    _one_segment(make_pool())
    assert cleanup_stale(lambda pid: True, dataflow_id=dataflow_id) == 0
    assert cleanup_stale(dataflow_id=dataflow_id) == 0  # we are alive
    assert cleanup_stale(lambda pid: pid != os.getpid(), dataflow_id=dataflow_id) == 1
    assert segment_files(dataflow_id) == []


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(0) and not pid_alive(-1)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)  # reaped (pid reuse this fast is not a concern)


def test_zombie_counts_as_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        os.kill(child.pid, signal.SIGKILL)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped
        assert not pid_alive(child.pid)
    finally:
        child.kill()
        child.wait()


_CRASHING_WRITER = textwrap.dedent(
    """
    import sys, time
    import pyarrow as pa
    from dora_zmq._shm import SegmentPool
    pool = SegmentPool(sys.argv[1], "crasher")
    desc = pool.write(pa.array(range(1000)), {"r"})
    print(desc.segment, flush=True)
    time.sleep(60)
    """
)


def test_cleanup_stale_removes_a_killed_writers_segment(dataflow_id: str) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _CRASHING_WRITER, dataflow_id], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            name = child.stdout.readline().strip()
            assert segment_files(dataflow_id) and segment_files(dataflow_id)[0].endswith(name)
            assert cleanup_stale(dataflow_id=dataflow_id) == 0  # writer alive
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
    assert segment_files(dataflow_id)  # SIGKILL: no atexit, the file is left
    assert cleanup_stale(dataflow_id=dataflow_id) == 1
    assert segment_files(dataflow_id) == []
