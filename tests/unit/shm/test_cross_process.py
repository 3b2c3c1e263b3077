"""Writer and reader in different processes: integrity, reuse, and either side crashing."""

from __future__ import annotations

import collections
import gc
import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pytest

from dora_zmq._shm import SegmentPool, SegmentReader, ShmDescriptor, cleanup_stale

from .conftest import Releases, segment_files

_WRITER = textwrap.dedent(
    """
    import dataclasses, json, sys
    import numpy as np, pyarrow as pa
    from dora_zmq._shm import SegmentPool

    pool = SegmentPool(sys.argv[1], "remote-writer", max_bytes=8 << 20)
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "write":
            i, size = int(args[0]), int(args[1])
            value = pa.array(np.arange(size, dtype=np.uint32) * 7 + i)
            desc = pool.write(value, {"test"})
            print(desc.encode().hex() if desc else "none", flush=True)
        elif cmd == "release":
            print("ok" if pool.release(int(args[0]), "test") else "no", flush=True)
        elif cmd == "stats":
            print(json.dumps(dataclasses.asdict(pool.stats())), flush=True)
        elif cmd == "close":
            pool.close()
            print("closed", flush=True)
            break
    """
)


def _expected(i: int, size: int) -> np.ndarray:
    return np.arange(size, dtype=np.uint32) * 7 + i


class Writer:
    """A writer process driven line by line."""

    def __init__(self, dataflow_id: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, dataflow_id],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        assert answer, f"writer died answering {line!r} (exit {self.proc.poll()})"
        return answer

    def write(self, i: int, size: int) -> ShmDescriptor | None:
        answer = self.ask(f"write {i} {size}")
        return None if answer == "none" else ShmDescriptor.decode(bytes.fromhex(answer))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def writer(dataflow_id: str) -> Iterator[Writer]:
    w = Writer(dataflow_id)
    yield w
    w.stop()


def test_reader_in_another_process_than_the_writer(
    writer: Writer, reader: SegmentReader, releases: Releases, dataflow_id: str
) -> None:
    held: collections.deque[tuple[int, int, pa.Array]] = collections.deque(maxlen=3)
    sizes = [10, 100_000, 400_000, 0, 16_384]  # uint32: up to 1.6 MB, 2 MiB segments
    for i in range(40):
        size = sizes[i % len(sizes)]
        desc = writer.write(i, size)
        assert desc is not None and desc.pid == writer.proc.pid
        arr = reader.open(desc)
        held.append((i, size, arr))  # drops (and so releases) the oldest beyond 3
        del arr
        for desc_done in releases.seen:
            assert writer.ask(f"release {desc_done.token}") == "ok"
        releases.seen.clear()
        for j, n, kept in held:  # what we still hold was never overwritten
            assert np.array_equal(kept.to_numpy(), _expected(j, n))
    stats = json.loads(writer.ask("stats"))
    assert stats["reused"] > 20 and stats["fallbacks"] == 0 and stats["in_use"] <= 3
    assert writer.ask("close") == "closed"
    assert writer.proc.wait(timeout=5) == 0
    assert segment_files(dataflow_id) == []
    for j, n, kept in held:  # the writer is gone and its names too; our data stays
        assert np.array_equal(kept.to_numpy(), _expected(j, n))
    live = reader.live  # 2 or 3: an empty array aliases nothing and was released at once
    assert live == sum(1 for _, n, _ in held if n)
    del held, kept
    gc.collect()
    assert len(releases.seen) == live and reader.live == 0  # to a gone writer: harmless


def test_killed_writer_leaves_readers_intact_and_cleanup_reclaims(
    writer: Writer, reader: SegmentReader, dataflow_id: str
) -> None:
    desc = writer.write(5, 2_000_000)
    assert desc is not None
    arr = reader.open(desc)
    writer.proc.send_signal(signal.SIGKILL)
    writer.stop()
    assert len(segment_files(dataflow_id)) == 1  # a crash leaves the file...
    assert cleanup_stale(dataflow_id=dataflow_id) == 1  # ...the daemon removes it
    assert np.array_equal(arr.to_numpy(), _expected(5, 2_000_000))


_READER = textwrap.dedent(
    """
    import sys, time
    from dora_zmq._shm import SegmentReader, ShmDescriptor
    reader = SegmentReader(lambda d: None)
    arr = reader.open(ShmDescriptor.decode(bytes.fromhex(sys.argv[1])))
    print(sum(arr.to_pylist()), flush=True)
    time.sleep(60)
    """
)


def test_killed_reader_is_reclaimed_with_reader_gone(pool: SegmentPool) -> None:
    desc = pool.write(pa.array(np.arange(1000)), {"child", "other"})
    assert desc is not None
    with subprocess.Popen(
        [sys.executable, "-c", _READER, desc.encode().hex()], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == str(sum(range(1000)))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
    assert pool.release(desc.token, "other")
    assert pool.stats().in_use == 1  # the dead child never released
    assert pool.reader_gone("child") == 1
    assert pool.stats().in_use == 0
    again = pool.write(pa.array([1]), {"child"})
    assert again is not None and again.segment == desc.segment
