"""Faults from bad input, with real processes: a node started by hand, an undeclared output,
malformed data frames on a node's topic, malformed control messages to the daemon.

The malformed messages are sent from inside node scripts with raw ZeroMQ on the sockets a real
peer would use (the node's own publisher; a DEALER to the daemon's control address), so they
take exactly the path a broken or hostile peer's messages would.
"""

from __future__ import annotations

from pathlib import Path

from dora_zmq.testing import node_events, write_dataflow

FLOWS = Path(__file__).resolve().parent.parent / "e2e" / "flows"


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


_FORGER = r'''
import struct
import time

import pyarrow as pa

from dora_zmq import Node

node = Node()
sock = node._pub.socket  # the node's own XPUB: malformed messages go where real ones go
topic = b"forger/data\0"
HEAD = struct.Struct("<2sBBQQ")


def head(kind=0, version=1, magic=b"DZ", seq=0):
    return HEAD.pack(magic, version, kind, seq, time.monotonic_ns())


def ipc(*columns):
    batch = pa.RecordBatch.from_arrays([pa.array(c) for c in columns], [f"c{i}" for i in range(len(columns))])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def schema_only():
    sink = pa.BufferOutputStream()
    pa.ipc.new_stream(sink, pa.schema([("value", pa.int64())])).close()
    return sink.getvalue().to_pybytes()


good_body = ipc([1, 2, 3])
malformed = [
    [topic],                                          # one frame
    [topic, b"a", b"b", b"c"],                        # four frames
    [topic, b"short", b""],                           # head too short
    [topic, head(magic=b"XX"), good_body],            # bad magic
    [topic, head(version=99), good_body],             # unknown wire version
    [topic, head(kind=7), good_body],                 # unknown kind
    [topic, head() + b"{not json", good_body],        # metadata not JSON
    [topic, head() + b"[1, 2]", good_body],           # metadata not an object
    [topic, head() + b"\xff\xfe", good_body],         # metadata not UTF-8
    [topic, head() + b'{"a":' * 100000, good_body],   # metadata nested too deep for json
    [topic, head(), b"not an arrow stream at all"],   # body not Arrow
    [topic, head(), good_body[: len(good_body) // 2]],  # truncated Arrow
    [topic, head(), schema_only()],                   # Arrow stream without a batch
    [topic, head(), ipc([1], [2])],                   # two columns
]
for frames in malformed:
    sock.send_multipart(frames)
print(f"FORGED {len(malformed)}", flush=True)
for i in range(5):
    node.send_output("data", pa.array([i]))
'''


def test_malformed_data_frames_are_counted_and_dropped(dora, tmp_path: Path) -> None:
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
        copy=[FLOWS / "recorder.py"],
        files={"forger.py": _FORGER},
    )
    result = dora("run", str(yml)).wait(30)
    assert result.returncode == 0, result.output
    forged = int(result.stdout.split("forger FORGED ", 1)[1].split()[0])
    # Every valid message arrives, in order, then the stream ends normally.
    events = node_events(result.stdout, "sink")
    assert [e["value"] for e in events if e["type"] == "INPUT"] == [[i] for i in range(5)], result.output
    assert [e["type"] for e in events][-2:] == ["INPUT_CLOSED", "STOP"]
    # Each malformed one was dropped with a warning that counts them.
    warnings = [line for line in result.output.splitlines() if "dropped malformed data message" in line]
    assert len(warnings) == forged, "\n".join(warnings)
    assert all(line.startswith("sink ") for line in warnings)
    assert f"{forged} so far" in warnings[-1]
    assert "Traceback" not in result.output


_INTRUDER = r'''
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
'''


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
