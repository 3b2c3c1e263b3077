"""Record a dataflow's outputs with real processes, replay them into a sink, compare.

The source sends messages of several Arrow types (one output changes type part-way) with
metadata, at uneven gaps; the recording must hold them exactly, and a replay must send the
same values, metadata and order, with the recorded timing (or none, as fast as possible).
"""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pytest

from dora_zmq.recording import Manifest, OutputRecord, Recording, RecordingWriter
from dora_zmq.testing import node_events, write_dataflow

pytestmark = pytest.mark.timeout(120)

# Gaps between sends, in ms: uneven, so a replay that ignores or distorts timing is caught.
GAPS_MS = [0, 30, 120, 10, 80, 200, 20, 60, 150, 40, 5, 100]

FLOW = """
nodes:
  - id: camera
    path: camera.py
    outputs: [frame, info]
  - id: sink
    path: sink.py
    inputs:
      frame: {source: camera/frame, queue_size: 100}
      info: {source: camera/info, queue_size: 100}
"""

CAMERA = f"""
    import time
    import numpy as np, pyarrow as pa
    from dora_zmq import Node
    node = Node()
    for i, gap in enumerate({GAPS_MS}):
        time.sleep(gap / 1000)
        meta = {{"i": i, "w": 3, "tag": "f" + str(i)}}
        node.send_output("frame", pa.array(np.arange(i, i + 6, dtype=np.uint16)), meta)
        if i % 3 == 0:
            # the info output changes type half-way: the recording starts a new segment
            info = pa.array([{{"x": i, "name": "n" + str(i)}}]) if i < 6 else pa.array(["s" + str(i), None])
            node.send_output("info", info, {{"i": i, "nested": {{"a": [1, 2.5, "z"]}}}})
"""

SINK = """
    import json
    from dora_zmq import Node
    node = Node()
    for event in node:
        if event["type"] == "INPUT":
            row = {"id": event["id"], "value": event["value"].to_pylist(), "type": str(event["value"].type),
                   "metadata": {k: v for k, v in event["metadata"].items() if k != "timestamp"},
                   "sent_ns": event.sent_ns}
            print("EVENT " + json.dumps(row), flush=True)
"""


def _expected() -> dict[str, list[tuple[list, dict]]]:
    frames = [(list(range(i, i + 6)), {"i": i, "w": 3, "tag": f"f{i}"}) for i in range(len(GAPS_MS))]
    infos = [
        ([{"x": i, "name": f"n{i}"}] if i < 6 else [f"s{i}", None], {"i": i, "nested": {"a": [1, 2.5, "z"]}})
        for i in range(0, len(GAPS_MS), 3)
    ]
    return {"camera/frame": frames, "camera/info": infos}


def _strip_trace(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if k != "open_telemetry_context"}


def _offsets_s(sent_ns: list[int]) -> list[float]:
    return [(t - sent_ns[0]) / 1e9 for t in sent_ns]


def _sink_rows(output: str) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {"camera/frame": [], "camera/info": []}
    for e in node_events(output, "sink"):
        rows["camera/" + e["id"]].append(e)
    return rows


def test_record_then_replay_sends_the_same_messages_with_their_timing(dora, flow_dir: Path) -> None:
    yml = write_dataflow(flow_dir, FLOW, files={"camera.py": CAMERA, "sink.py": SINK})
    rec1, rec2 = flow_dir / "rec1", flow_dir / "rec2"

    recorded = dora("run", str(yml), "--record", str(rec1), cwd=flow_dir).wait(60)
    assert recorded.returncode == 0, recorded.output
    assert "camera/frame" in recorded.stdout and "not written" in recorded.stdout  # the summary table

    # The recording holds exactly what was sent, in order, with increasing send times.
    rec = Recording.open(rec1)
    assert rec.manifest.complete and rec.manifest.dataflow_name == "dataflow"
    assert "dora-zmq-recorder" not in rec.manifest.descriptor and "camera.py" in rec.manifest.descriptor
    for topic, want in _expected().items():
        got = rec.read_output(topic)
        assert [(m.value.to_pylist(), m.metadata) for m in got] == want, topic
        assert [m.seq for m in got] == list(range(1, len(want) + 1))
        assert all(m.received_ns >= m.sent_ns - 5_000_000 for m in got)  # same host, same clock
        out = rec.manifest.output(topic)
        assert out.messages == len(want) and out.not_written == out.dropped == out.lost == 0
    assert [s.value_type for s in rec.manifest.output("camera/info").segments] == [
        "struct<x: int64, name: string>",
        "string",
    ]
    frames1 = rec.read_output("camera/frame")
    recorded_offsets = _offsets_s([m.sent_ns for m in frames1])
    assert recorded_offsets[-1] >= 0.7  # the gaps add up to 0.815 s

    # Replay: the camera is swapped for its recording, the sink runs for real; record it again.
    replayed = dora("replay", str(rec1), "--record", str(rec2), cwd=flow_dir).wait(60)
    assert replayed.returncode == 0, replayed.output
    assert "replaying camera" in replayed.output
    rows = _sink_rows(replayed.stdout)
    for topic, want in _expected().items():
        assert [(r["value"], _strip_trace(r["metadata"])) for r in rows[topic]] == want, topic
    again = Recording.open(rec2)
    frames2 = again.read_output("camera/frame")
    assert [m.value.to_pylist() for m in frames2] == [m.value.to_pylist() for m in frames1]
    assert [str(m.value.type) for m in frames2] == ["uint16"] * len(GAPS_MS)
    # Timing: each message at its recorded offset from the first (a loaded 2-core VM: 60 ms).
    replay_offsets = _offsets_s([m.sent_ns for m in frames2])
    worst = max(abs(a - b) for a, b in zip(replay_offsets, recorded_offsets))
    assert worst < 0.06, (recorded_offsets, replay_offsets)
    # The order across outputs is kept too (info i=3 after frame i=3, before frame i=4).
    merged = [(m.topic, m.metadata["i"]) for m in again.messages()]
    assert merged.index(("camera/info", 3)) == merged.index(("camera/frame", 3)) + 1


def test_replay_node_in_yaml_as_fast_as_possible(dora, flow_dir: Path) -> None:
    """The dora-rs way: a node's `path` becomes the replay program; its outputs stay."""
    yml = write_dataflow(flow_dir, FLOW, files={"camera.py": CAMERA, "sink.py": SINK})
    recorded = dora(
        "run", str(yml), "--record", str(flow_dir / "rec"), "--record-only", "camera/frame", cwd=flow_dir
    ).wait(60)
    assert recorded.returncode == 0, recorded.output
    assert [o.topic for o in Recording.open(flow_dir / "rec").outputs] == ["camera/frame"]

    replay_dir = flow_dir / "replay"
    replay_yml = write_dataflow(
        replay_dir,
        """
        nodes:
          - id: cam
            path: dora-zmq-replay
            args: ../rec --node camera --as-fast-as-possible
            outputs: [frame]
          - id: sink
            path: sink.py
            inputs:
              frame: {source: cam/frame, queue_size: 100}
        """,
        files={"sink.py": SINK},
    )
    result = dora("run", str(replay_yml), cwd=replay_dir).wait(60)
    assert result.returncode == 0, result.output
    rows = [e for e in node_events(result.stdout, "sink")]
    assert [(r["value"], _strip_trace(r["metadata"])) for r in rows] == _expected()["camera/frame"]
    sent = [r["sent_ns"] for r in rows]
    assert (sent[-1] - sent[0]) / 1e9 < 0.4  # recorded over 0.815 s; no pacing now


def test_damaged_recordings_give_a_clear_error(dora, flow_dir: Path) -> None:
    """What the CLI says (each kind of damage is covered in tests/unit/recording)."""
    yml = write_dataflow(flow_dir, FLOW, files={"camera.py": CAMERA, "sink.py": SINK})
    rec = flow_dir / "rec"
    manifest = Manifest(
        "dataflow",
        "id",
        FLOW,
        str(flow_dir),
        "now",
        time.time_ns(),
        outputs=[OutputRecord("camera/frame", "camera", "frame")],
    )
    writer = RecordingWriter(rec, manifest)
    for i in range(200):
        writer.write("camera/frame", pa.array(range(50)), {"i": i}, i + 1, i, i)
    writer.close({}, {})
    again = dora("run", str(yml), "--record", str(rec), cwd=flow_dir).wait(30)
    assert again.returncode == 1 and "holds a recording already" in again.stderr, again.output

    def replay_fails() -> str:
        result = dora("replay", str(rec), cwd=flow_dir).wait(30)
        assert result.returncode == 1, result.output
        assert "Traceback" not in result.output, result.output
        return result.stderr

    stream = rec / "camera%2Fframe.0.arrow"
    whole = stream.read_bytes()
    stream.write_bytes(whole[: len(whole) - 100])  # cut inside the last batch
    said = replay_fails()
    assert "camera%2Fframe.0.arrow (camera/frame) is cut short or corrupt after 192 message(s)" in said
    assert "use --allow-truncated" in said
    stream.write_bytes(whole)
    text = (rec / "manifest.json").read_text()
    (rec / "manifest.json").write_text(text[: len(text) // 2])
    assert "manifest.json is unreadable or cut short" in replay_fails()
    assert "does not exist" in dora("replay", str(flow_dir / "nowhere")).wait(30).stderr


FOREVER = """
    import pyarrow as pa
    from dora_zmq import Node
    node = Node()
    i = 0
    for event in node:
        if event["type"] == "INPUT":
            i += 1
            node.send_output("n", pa.array([i]), {"i": i})
            if i == 20:
                print("sent 20", flush=True)
"""


def test_ctrl_c_leaves_a_complete_recording(dora, flow_dir: Path) -> None:
    yml = write_dataflow(
        flow_dir,
        """
        nodes:
          - id: src
            path: src.py
            inputs: {tick: dora/timer/millis/10}
            outputs: [n]
        """,
        files={"src.py": FOREVER},
    )
    run = dora("run", str(yml), "--record", str(flow_dir / "rec"), cwd=flow_dir)
    run.wait_for_line("sent 20")
    run.interrupt_group()
    result = run.wait(30)
    assert result.returncode == 0, result.output
    rec = Recording.open(flow_dir / "rec")
    assert rec.manifest.complete
    got = rec.read_output("src/n")
    assert len(got) >= 20 and [m.value[0].as_py() for m in got] == list(range(1, len(got) + 1))


def test_start_records_on_another_machine_over_tcp(dora, local_cluster, flow_dir: Path) -> None:
    """`start --record` on a coordinator with two daemons; the recorder runs on the second."""
    yml = write_dataflow(
        flow_dir,
        """
        nodes:
          - id: camera
            path: camera.py
            deploy: {machine: robot}
            outputs: [frame, info]
          - id: sink
            path: sink.py
            deploy: {machine: robot}
            inputs:
              frame: {source: camera/frame, queue_size: 100}
              info: {source: camera/info, queue_size: 100}
        """,
        files={"camera.py": CAMERA, "sink.py": SINK},
    )
    cluster = local_cluster()
    env = cluster.env
    cluster.coordinator()
    for machine in ("robot", "base"):
        cluster.daemon("--machine-id", machine, "--bind-data", "127.0.0.1", cwd=flow_dir)
    started = dora(
        "start",
        str(yml),
        "--attach",
        "--record",
        str(flow_dir / "rec"),
        "--record-machine",
        "base",
        env=env,
        cwd=flow_dir,
    ).wait(60)
    assert started.returncode == 0, started.output
    rec = Recording.open(flow_dir / "rec")
    assert rec.manifest.complete and rec.manifest.machine == "base"
    for topic, want in _expected().items():
        assert [(m.value.to_pylist(), m.metadata) for m in rec.read_output(topic)] == want, topic
    assert dora("destroy", env=env).wait(30).returncode == 0


def test_loop_replays_again_until_stopped(dora, flow_dir: Path) -> None:
    yml = write_dataflow(flow_dir, FLOW, files={"camera.py": CAMERA, "sink.py": SINK})
    assert (
        dora("run", str(yml), "--record", str(flow_dir / "rec"), "--record-only", "camera/info", cwd=flow_dir)
        .wait(60)
        .returncode
        == 0
    )
    replay_yml = write_dataflow(
        flow_dir / "loop",
        """
        nodes:
          - id: camera
            path: dora-zmq-replay
            args: ../rec --loop --speed 20
            outputs: [info]
          - id: counter
            path: counter.py
            inputs:
              info: {source: camera/info, queue_size: 100}
        """,
        files={
            "counter.py": """
            from dora_zmq import Node
            node = Node()
            seen = []
            for event in node:
                if event["type"] == "INPUT":
                    seen.append(event["metadata"]["i"])
                    if len(seen) == 10:
                        print("SEEN", seen, flush=True)
                        node.request_dataflow_stop()
        """
        },
    )
    result = dora("run", str(replay_yml), cwd=flow_dir / "loop").wait(60)
    assert result.returncode == 0, result.output
    assert "SEEN [0, 3, 6, 9, 0, 3, 6, 9, 0, 3]" in result.stdout, result.output
