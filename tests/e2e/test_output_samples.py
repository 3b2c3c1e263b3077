"""Output samples (``Node.allocate_output``) in real dataflows: written in place, sent, and read
back byte for byte, through shared memory (zero copy) or, below the threshold or with shared
memory off, as a heap copy; and no segment file left behind either way.
"""

from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path

import pytest

from dora_zmq._shm import shm_dir
from dora_zmq._shm._naming import dataflow_tag
from dora_zmq.testing import write_dataflow

MIB = 1 << 20

# A source node: its Node() returns once dst is attached *and* known to run on this machine, so
# the very first sample is already in shared memory (a start-up race fixed in Node._start).
FLOW = """
nodes:
  - id: src
    path: src.py
    outputs: [out]
    env: {ENV}
  - id: dst
    path: dst.py
    inputs:
      out: {source: src/out, queue_size: 1000}
"""

# The value of message i, shared by both sides: distinct per message, and not a constant.
PATTERNS = """
    import numpy as np

    def expected(meta):
        n, i = meta["count"], meta["i"]
        if meta["dtype"] == "uint8":
            return ((np.arange(n, dtype=np.int64) * 7 + i * 31) % 256).astype(np.uint8)
        if meta["dtype"] == "float":
            return np.arange(n, dtype=np.float32) * np.float32(0.25) - np.float32(i)
        raise ValueError(meta["dtype"])
"""

# env: COUNT messages; SIZES bytes per message (cycled); MODE how the sample is filled and sent:
#   sample        fill sample.numpy(), send the sample itself
#   numpy2d       fill sample.numpy("float32", shape=(h, w)), send that NumPy view
#   as_array      fill a float32 view, send sample.as_array(pa.float32())
#   from_buffers  fill a float32 view, send pa.Array.from_buffers(pa.float32(), n, [None, sample.buffer])
#   twice         send the sample, then the same sample again (must fail)
SRC = """
    import json, os
    import numpy as np, pyarrow as pa
    from dora_zmq import Node, OutputSample
    from dora_zmq._shm import shm_dir
    from dora_zmq._shm._naming import dataflow_tag
    import patterns

    COUNT = int(os.environ.get("COUNT", "20"))
    SIZES = [int(s) for s in os.environ["SIZES"].split(",")]
    MODE = os.environ.get("MODE", "sample")

    node = Node()
    print("src dataflow", node.dataflow_id, flush=True)
    shared = []
    for i in range(COUNT):
        nbytes = SIZES[i % len(SIZES)]
        sample = node.allocate_output("out", nbytes)
        assert isinstance(sample, OutputSample) and sample.nbytes == len(sample) == nbytes
        assert not sample.sent
        shared.append(sample.shared)
        if MODE in ("sample", "twice"):
            meta = {"i": i, "count": nbytes, "dtype": "uint8", "shared": sample.shared}
            sample.numpy()[:] = patterns.expected(meta)
            node.send_output("out", sample, meta)
            assert sample.sent
            if MODE == "twice":
                print("src sent once", flush=True)
                node.send_output("out", sample, meta)  # OutputError: sent already
                print("src sent twice", flush=True)
        else:
            meta = {"i": i, "count": nbytes // 4, "dtype": "float", "shared": sample.shared}
            h = 2 if nbytes % 8 == 0 else 1
            view = sample.numpy("float32", shape=(h, nbytes // 4 // h))
            view[:] = patterns.expected(meta).reshape(view.shape)
            if MODE == "numpy2d":
                node.send_output("out", view, meta)
            elif MODE == "as_array":
                node.send_output("out", sample.as_array(pa.float32()), meta)
            elif MODE == "from_buffers":
                node.send_output("out", pa.Array.from_buffers(pa.float32(), nbytes // 4, [None, sample.buffer]), meta)
            else:
                raise ValueError(MODE)
            del view
    pool = node._shm._pool
    stats = pool.stats() if pool is not None else None
    files = [f for f in os.listdir(shm_dir()) if f.startswith(f"dora-zmq-{dataflow_tag(node.dataflow_id)}-")]
    print(
        f"src sent {COUNT} shared {json.dumps(shared)} pool {pool is not None} "
        f"writes {stats.writes if stats else 0} fallbacks {stats.fallbacks if stats else 0} files {len(files)}",
        flush=True,
    )
"""

# Verifies every value byte for byte, keeps every fourth one until the end (the sender must
# not reuse their memory meanwhile) and checks those again.
DST = """
    import json
    from dora_zmq import Node
    import patterns

    node = Node()
    ok, held, flags, events = 0, [], [], []
    for event in node:
        events.append(event["type"])
        if event["type"] != "INPUT":
            continue
        meta, value = event["metadata"], event["value"]
        want = patterns.expected(meta)
        assert str(value.type) == ("uint8" if meta["dtype"] == "uint8" else "float"), (value.type, meta)
        assert len(value) == len(want), (len(value), meta)
        assert value.to_numpy(zero_copy_only=True).tobytes() == want.tobytes(), f"message {meta['i']} corrupted"
        flags.append(meta["shared"])
        if meta["i"] % 4 == 0:
            held.append((meta, value))
        ok += 1
        del event, value
    for meta, value in held:
        assert value.to_numpy().tobytes() == patterns.expected(meta).tobytes(), f"held message {meta['i']} overwritten"
    print(f"dst verified {ok} held {len(held)} shared {json.dumps(flags)} events {json.dumps(events[-2:])}", flush=True)
"""


def _flow(dir_: Path, **env: object) -> Path:
    env_yaml = "{" + ", ".join(f"{k}: '{v}'" for k, v in env.items()) + "}"
    return write_dataflow(
        dir_,
        FLOW.replace("{ENV}", env_yaml),
        files={"src.py": SRC, "dst.py": DST, "patterns.py": PATTERNS},
    )


def _dataflow_id(stdout: str) -> str:
    m = re.search(r"src dataflow (\S+)", stdout)
    assert m, stdout
    return m.group(1)


def _segment_files(dataflow_id: str) -> list[str]:
    return sorted(glob.glob(os.path.join(shm_dir(), f"dora-zmq-{dataflow_tag(dataflow_id)}-*")))


def _sender_report(stdout: str) -> tuple[list[bool], bool, int, int, int]:
    """``(sample.shared of each message, pool created, pool writes, fallbacks, segment files)``."""
    m = re.search(r"src sent \d+ shared (\[.*?\]) pool (True|False) writes (\d+) fallbacks (\d+) files (\d+)", stdout)
    assert m, stdout
    return json.loads(m.group(1)), m.group(2) == "True", int(m.group(3)), int(m.group(4)), int(m.group(5))


@pytest.mark.timeout(60)
def test_shared_samples_arrive_byte_exact_zero_copy_and_leave_no_segment(dora, flow_dir: Path) -> None:
    result = dora("run", str(_flow(flow_dir, COUNT=20, SIZES=2 * MIB))).wait(45)
    assert result.returncode == 0, result.output
    shared, pool, writes, fallbacks, files = _sender_report(result.stdout)
    assert shared == [True] * 20, result.output
    assert files > 0, result.output  # the sender saw its segments where the leak check looks
    # one reservation per sample and no second write: every message was framed in place
    assert pool and writes == 20 and fallbacks == 0, result.output
    assert f"dst verified 20 held 5 shared {json.dumps([True] * 20)}" in result.stdout, result.output
    assert 'events ["INPUT_CLOSED", "STOP"]' in result.stdout, result.output
    assert _segment_files(_dataflow_id(result.stdout)) == [], "segments left in shared memory"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["numpy2d", "as_array", "from_buffers"])
def test_a_float32_view_of_a_sample_arrives_equal(dora, flow_dir: Path, mode: str) -> None:
    h, w = 480, 640  # 1.2 MB: above the default threshold
    result = dora("run", str(_flow(flow_dir, COUNT=8, SIZES=h * w * 4, MODE=mode))).wait(45)
    assert result.returncode == 0, result.output
    shared, pool, writes, fallbacks, _ = _sender_report(result.stdout)
    assert shared == [True] * 8, result.output
    assert pool and writes == 8 and fallbacks == 0, result.output  # views of samples: no copy either
    assert "dst verified 8 held 2" in result.stdout, result.output
    assert _segment_files(_dataflow_id(result.stdout)) == [], "segments left in shared memory"


@pytest.mark.timeout(60)
def test_small_samples_are_heap_copies_and_the_threshold_is_inclusive(dora, flow_dir: Path) -> None:
    sizes = [1, 1000, 64 * 1024 - 1, 64 * 1024]  # the default threshold is 64 KiB
    result = dora("run", str(_flow(flow_dir, COUNT=8, SIZES=",".join(map(str, sizes))))).wait(45)
    assert result.returncode == 0, result.output
    shared, pool, writes, fallbacks, _ = _sender_report(result.stdout)
    assert shared == [False, False, False, True] * 2, result.output
    assert pool and writes == 2 and fallbacks == 0, result.output  # only the two at the threshold
    assert "dst verified 8 held 2 shared [false, false, false, true, false, false, false, true]" in result.stdout
    assert _segment_files(_dataflow_id(result.stdout)) == [], "segments left in shared memory"


@pytest.mark.timeout(60)
def test_only_small_samples_never_create_a_pool(dora, flow_dir: Path) -> None:
    result = dora("run", str(_flow(flow_dir, COUNT=10, SIZES="13,4096,60000"))).wait(45)
    assert result.returncode == 0, result.output
    shared, pool, _, _, files = _sender_report(result.stdout)
    assert shared == [False] * 10 and not pool and files == 0, result.output
    assert "dst verified 10 held 3" in result.stdout, result.output


@pytest.mark.timeout(60)
@pytest.mark.parametrize("nbytes", [1000, 2 * MIB], ids=["heap", "shared"])
def test_sending_a_sample_twice_fails_the_node(dora, flow_dir: Path, nbytes: int) -> None:
    result = dora("run", str(_flow(flow_dir, COUNT=1, SIZES=nbytes, MODE="twice"))).wait(45)
    assert result.returncode == 1, result.output
    assert "src sent once" in result.stdout and "src sent twice" not in result.stdout, result.output
    assert "node 'src' failed (exit code 1)" in result.output, result.output
    assert "OutputError" in result.stderr and "sent already" in result.stderr, result.output
    # the first send arrived intact; the receiver saw the failure and ended cleanly
    shared = "true" if nbytes >= 64 * 1024 else "false"
    assert f"dst verified 1 held 1 shared [{shared}]" in result.stdout, result.output
    assert 'events ["INPUT_CLOSED", "STOP"]' in result.stdout, result.output
    assert _segment_files(_dataflow_id(result.stdout)) == [], "segments left in shared memory"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["sample", "numpy2d"])
def test_samples_work_with_shared_memory_off(dora, flow_dir: Path, mode: str) -> None:
    result = dora(
        "run", str(_flow(flow_dir, COUNT=6, SIZES=2 * MIB, MODE=mode)), env={"DORA_ZMQ_SHM_THRESHOLD": "0"}
    ).wait(45)
    assert result.returncode == 0, result.output
    shared, pool, _, _, files = _sender_report(result.stdout)
    assert shared == [False] * 6 and not pool and files == 0, result.output
    assert "dst verified 6 held 2 shared [false, false, false, false, false, false]" in result.stdout, result.output
    assert _segment_files(_dataflow_id(result.stdout)) == [], "segments left in shared memory"
