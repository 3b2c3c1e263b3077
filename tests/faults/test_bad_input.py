"""Faults from bad input, with real processes: a node started by hand, an undeclared output,
malformed data frames on a node's topic, malformed control messages to the daemon.

The malformed messages are sent from inside node scripts with raw ZeroMQ on the sockets a real
peer would use (the node's own publisher; a DEALER to the daemon's control address), so they
take exactly the path a broken or hostile peer's messages would.
"""

from __future__ import annotations

import hashlib
import json

from pathlib import Path

from dora_zmq.testing import node_events, write_dataflow

HERE = Path(__file__).resolve().parent
FLOWS = HERE.parent / "e2e" / "flows"


def test_node_started_by_hand_says_how_to_run_it(dora, tmp_path: Path) -> None:
    script = tmp_path / "by_hand.py"
    script.write_text("from dora_zmq import Node\n\nnode = Node()\nprint('unreachable')\n")
    result = dora(python_args=[str(script)], cwd=tmp_path).wait(30)
    assert result.returncode != 0
    assert "unreachable" not in result.output
    assert "NodeConfigError" in result.stderr
    assert "DORA_NODE_ID is not set" in result.stderr
    assert "dora-zmq run" in result.stderr  # how to run it
    assert "Traceback" not in result.stderr, result.stderr  # one clear message, not a stack


def test_send_output_to_an_undeclared_output(dora, tmp_path: Path) -> None:
    yml = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: sender
            path: sender.py
            outputs: [good, also_good]
          - id: sink
            path: recorder.py
            inputs: {x: sender/good}
        """,
        copy=[FLOWS / "recorder.py"],
        files={
            "sender.py": """
                from dora_zmq import Node, OutputError
                node = Node()
                try:
                    node.send_output("typo", b"x")
                except OutputError as exc:
                    print(f"OUTPUT_ERROR {exc}", flush=True)
                    assert isinstance(exc, KeyError)
                node.send_output("good", b"ok")
                node.send_output("typo", b"x")  # uncaught this time: the node fails
            """,
        },
    )
    result = dora("run", str(yml)).wait(30)
    assert result.returncode == 1, result.output
    expected = "node 'sender' has no output 'typo' (declared: good, also_good)"
    assert f"sender OUTPUT_ERROR {expected}" in result.stdout, result.output
    assert "node 'sender' failed (exit code 1)" in result.stderr
    assert f"OutputError: {expected}" in result.stderr  # the stderr tail in the failure report
    events = node_events(result.stdout, "sink")
    assert [e["type"] for e in events] == ["INPUT", "NODE_FAILED", "INPUT_CLOSED", "STOP"], result.output
    assert expected in events[1]["error"]


_FORGER = r"""
import json
import struct

import pyarrow as pa

from dora_zmq import Node
from dora_zmq._shm import ShmDescriptor
from dora_zmq._wire import encode_control_frames, encode_data_frames, encode_shm_frames, MessageKind
from hostile_arrays import invalid_arrays, list_child_longer_than_its_buffer

node = Node()
sock = node._pub.socket  # the node's own XPUB: forged messages go where real ones go
TOPIC = b"forger/data\0"


def wire(frames):
    return [f.to_pybytes() if isinstance(f, pa.Buffer) else bytes(f) for f in frames]


# Valid messages of the current encoder, one per kind, whose fields are then broken one by one.
data = wire(encode_data_frames(TOPIC, 0, pa.array(["a", None, "ccc"]), {"k": 1}))  # DATA
flat = wire(encode_data_frames(TOPIC, 0, pa.array([1, 2, 3], pa.int64()), None))  # FLAT
nested = wire(encode_data_frames(TOPIC, 0, pa.array([[1, 2, 3]], pa.list_(pa.int64())), None))
shm = wire(encode_shm_frames(TOPIC, 0, ShmDescriptor("dora-zmq-x_000000-forger-1-0", 64, 100, 1, 1).encode(), None))
assert data[1][3] == MessageKind.DATA and flat[1][3] == MessageKind.FLAT


def with_head(frames, **fields):
    magic, version, kind, seq, sent = struct.unpack_from("<2sBBQQ", frames[1])
    head = dict(magic=magic, version=version, kind=kind, seq=seq, sent=sent) | fields
    packed = struct.pack("<2sBBQQ", head["magic"], head["version"], head["kind"], head["seq"], head["sent"])
    return [frames[0], packed + fields.get("meta", frames[1][20:]), *frames[2:]]


def with_frame(frames, i, raw):
    return [*frames[:i], raw, *frames[i + 1:]]


two_columns = pa.schema([("a", pa.int64()), ("b", pa.int64())]).serialize().to_pybytes()
malformed = {
    "one frame": data[:1],
    "three frames (the old layout)": data[:3],
    "five frames": data + [b""],
    "topic with a suffix": with_frame(data, 0, TOPIC + b"junk"),
    "head too short": with_frame(data, 1, data[1][:10]),
    "bad magic": with_head(data, magic=b"XX"),
    "wire version 1": with_head(data, version=1),
    "wire version 99": with_head(data, version=99),
    "unknown kind": with_head(data, kind=7),
    "metadata not JSON": with_head(data, meta=b"{not json"),
    "metadata not an object": with_head(data, meta=b"[1, 2]"),
    "metadata not UTF-8": with_head(data, meta=b"\xff\xfe"),
    "metadata nested too deep": with_head(data, meta=b'{"a":' * 100_000),
    "metadata with a 5000-digit integer": with_head(data, meta=b'{"n":' + b"7" * 5000 + b"}"),
    "schema not Arrow": with_frame(data, 2, b"not a schema"),
    "schema of two columns": with_frame(data, 2, two_columns),
    "body not Arrow": with_frame(data, 3, b"not an arrow record batch"),
    "body truncated": with_frame(data, 3, data[3][: len(data[3]) // 2]),
    "list child longer than its buffer": with_frame(nested, 3, list_child_longer_than_its_buffer(nested[3])),
    "flat body not whole values": with_frame(flat, 3, flat[3][:-3]),
    "flat body of a variable-size type": with_frame(flat, 2, data[2]),
    "shared-memory descriptor garbage": with_frame(shm, 3, b"DZSM" + b"\xff" * 40),
    "shared-memory segment that does not exist": shm,
}
for frames in malformed.values():
    sock.send_multipart(frames)
# Arrays that lie about their buffers, made with pyarrow's public API and sent as any value:
# small ones on the socket, large ones (over the 64 KiB threshold) through shared memory.
hostile = [*invalid_arrays().values(), *invalid_arrays(data_size=256 * 1024).values()]
for value in hostile:
    node.send_output("data", value)
print(f"FORGED {len(malformed) + len(hostile)}", flush=True)
for i in range(5):
    node.send_output("data", pa.array([i]))
    node.send_output("data", pa.array([f"{i}" * 200_000]))  # valid, through shared memory
"""


def test_malformed_data_frames_are_counted_and_dropped(dora, tmp_path: Path) -> None:
    """Each forged message breaks one field of a message the current encoder made; each
    invalid array was built with ``pa.Array.from_buffers``. All are dropped, counted, named."""
    yml = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: forger
            path: forger.py
            outputs: [data]
          - id: sink
            path: recorder.py
            inputs: {x: forger/data}
        """,
        copy=[FLOWS / "recorder.py", HERE / "hostile_arrays.py"],
        files={"forger.py": _FORGER},
    )
    result = dora("run", str(yml)).wait(30)
    assert result.returncode == 0, result.output
    forged = int(result.stdout.split("forger FORGED ", 1)[1].split()[0])
    # Every valid message arrives, in order, then the stream ends normally.
    events = node_events(result.stdout, "sink")

    def digest(value: list[object]) -> dict[str, object]:  # as recorder.py prints a long value
        text = json.dumps(value)
        return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "json_length": len(text)}

    expected = [v for i in range(5) for v in ([i], digest([f"{i}" * 200_000]))]
    assert [e["value"] for e in events if e["type"] == "INPUT"] == expected, result.output[-3000:]
    assert [e["type"] for e in events][-2:] == ["INPUT_CLOSED", "STOP"]
    # Each malformed one was dropped with a warning that names the input and counts them.
    warnings = [line for line in result.output.splitlines() if "dropped malformed data message" in line]
    assert len(warnings) == forged, "\n".join(warnings)
    assert all(line.startswith("sink ") for line in warnings)
    # the topic with a suffix is on no input (no route); every other one names the input
    assert sum("on input x (" in line for line in warnings) == forged - 1, "\n".join(warnings)
    assert f"{forged} so far" in warnings[-1]
    assert sum("invalid Arrow" in line for line in warnings) >= 8, "\n".join(warnings)
    # dropped as malformed, so not counted again as lost in transit (their seq was read)
    assert "lost in transit" not in result.output, result.output[-3000:]
    assert "Traceback" not in result.output


_INTRUDER = r"""
import json
import os

import pyarrow as pa
import zmq

from dora_zmq import Node

node = Node()
df = node.dataflow_id
raw = zmq.Context.instance().socket(zmq.DEALER)
raw.setsockopt(zmq.LINGER, 1000)
raw.connect(os.environ["DORA_ZMQ_DAEMON"])
bad = [
    [b"not json"],
    [b"[1, 2, 3]"],
    [b'{"no_type": 1}'],
    [b'{"t": "NoSuchMessage"}'],
    [b'{"t": "NodeBound"}'],                              # missing fields
    [b"two", b"frames"],
    [json.dumps({"t": "NodeClosing", "dataflow_id": df, "node": "ghost", "error": ""}).encode()],
    [json.dumps({"t": "NodeStats", "dataflow_id": df, "node": "ghost", "drops": "not a dict"}).encode()],
    [json.dumps({"t": "NodeBound", "dataflow_id": "no-such-dataflow", "node": "ghost",
                 "endpoint": {"machine": "", "ipc": "ipc:///nowhere"}}).encode()],
]
for frames in bad:
    raw.send_multipart(frames)
raw.close()
print(f"INTRUDED {len(bad)}", flush=True)
# The daemon and the coordinator keep working: this node is followed to a clean end.
for i in range(3):
    node.send_output("data", pa.array([i]))
"""


def test_malformed_control_messages_to_the_daemon_are_dropped(dora, tmp_path: Path) -> None:
    yml = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: intruder
            path: intruder.py
            outputs: [data]
          - id: sink
            path: recorder.py
            inputs: {x: intruder/data}
        """,
        copy=[FLOWS / "recorder.py"],
        files={"intruder.py": _INTRUDER},
    )
    result = dora("run", str(yml)).wait(30)
    assert result.returncode == 0, result.output
    assert "intruder INTRUDED 9" in result.stdout
    events = node_events(result.stdout, "sink")
    assert [e["value"] for e in events if e["type"] == "INPUT"] == [[0], [1], [2]], result.output
    assert "dataflow" in result.stderr and "finished" in result.stderr
    dropped = [line for line in result.stderr.splitlines() if "dropped malformed control message" in line]
    assert len(dropped) == 7, result.stderr  # the seven that cannot be decoded
    # A well-formed message naming a node that does not exist costs that message only.
    assert "daemon dropped NodeClosing" in result.stderr and "no node 'ghost'" in result.stderr, result.stderr
    assert "Traceback" not in result.output
