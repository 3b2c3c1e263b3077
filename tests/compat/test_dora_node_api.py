"""Differential: dora's node API (dataflow_id(), event keys and kinds, recv_async) on dora-rs 1.1
and on dora_zmq, the same programs with only their import line changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._dora_harness import FlowRun, run_both, run_flow

pytestmark = pytest.mark.timeout(150)

FLOW = """
nodes:
  - id: source
    path: source.py
    inputs:
      tick: dora/timer/millis/50
    outputs: [numbers]
  - id: sink
    path: sink.py
    inputs:
      numbers: source/numbers
"""

SOURCE = """
import pyarrow as pa
from dora import Node
from compat_record import record

node = Node()
dataflow_id = node.dataflow_id()
record("source", "dataflow_id", is_str=isinstance(dataflow_id, str), length=len(dataflow_id),
       restart=node.is_restart(), restart_count=node.restart_count())
sent = 0
for event in node:
    if event["type"] == "INPUT":
        record(
            "source", "tick", id=event["id"], kind=event["kind"], value_len=len(event["value"]),
            value_type=str(event["value"].type),
        )
        node.send_output("numbers", pa.array([sent, sent * 10]), {"n": sent, "label": "x"})
        sent += 1
        if sent == 3:
            break
"""

SINK = """
import datetime
from dora import Node
from compat_record import record

node = Node()
record("sink", "dataflow_id", value_matches_type=isinstance(node.dataflow_id(), str))
config = node.node_config()
record("sink", "descriptor", nodes=[n["id"] for n in node.dataflow_descriptor()["nodes"]],
       inputs=config["inputs"], outputs=list(config["outputs"]))
for event in node:
    fields = {k: event[k] for k in ("type", "id", "kind")}
    if event["type"] == "INPUT":
        fields["value"] = event["value"].to_pylist()
        fields["metadata"] = {k: v for k, v in event["metadata"].items() if k in ("n", "label")}
        fields["data_key"] = "data" in event
        stamp = event["metadata"]["timestamp"]
        age = (datetime.datetime.now(datetime.timezone.utc) - stamp).total_seconds()
        fields["timestamp"] = [type(stamp).__name__, stamp.utcoffset().total_seconds(), 0 <= age < 30]
    record("sink", "event", **fields)
record("sink", "loop_ran", ticked=True)
"""

# The same sink with asyncio: `await node.recv_async()` must not block the loop (a concurrent
# task keeps ticking while it waits).
ASYNC_SINK = """
import asyncio
from dora import Node
from compat_record import record

node = Node()
record("sink", "dataflow_id", value_matches_type=isinstance(node.dataflow_id(), str))

async def ticker(stop):
    ticks = 0
    while not stop.is_set():
        await asyncio.sleep(0.01)
        ticks += 1
    return ticks

async def main():
    stop = asyncio.Event()
    task = asyncio.create_task(ticker(stop))
    while True:
        event = await node.recv_async()
        if event is None:
            break
        fields = {k: event[k] for k in ("type", "id", "kind")}
        if event["type"] == "INPUT":
            fields["value"] = event["value"].to_pylist()
            fields["metadata"] = {k: v for k, v in event["metadata"].items() if k in ("n", "label")}
            fields["data_key"] = "data" in event
        record("sink", "event", **fields)
    stop.set()
    record("sink", "loop_ran", ticked=(await task) > 0)

asyncio.run(main())
"""


def inputs(run: FlowRun) -> list[tuple[list[int], int]]:
    """The sink's INPUT events as (value, metadata n), sorted: what arrived, not in which order."""
    return sorted((e["value"], e["metadata"]["n"]) for e in run.of("sink", "event") if e["type"] == "INPUT")


def controls(run: FlowRun) -> list[tuple[str, str]]:
    """The sink's other events, in order."""
    return [(e["type"], e["id"]) for e in run.of("sink", "event") if e["type"] != "INPUT"]


def assert_same_events(ref: FlowRun, ours: FlowRun) -> None:
    """Same messages, metadata and control events on both; the order held on dora_zmq only.

    dora-rs 1.1 was seen delivering INPUT_CLOSED and STOP before the last messages of a node
    that exits right after sending them (about one run in two here), and INPUT events after
    STOP; dora_zmq always delivers an input's INPUT_CLOSED after its last message (README,
    "Differences from dora-rs").
    """
    assert ref.returncode == 0, ref.output[-3000:]
    assert ours.returncode == 0, ours.output[-3000:]
    assert inputs(ours) == inputs(ref) == [([0, 0], 0), ([1, 10], 1), ([2, 20], 2)]
    assert controls(ours) == controls(ref) == [("INPUT_CLOSED", "numbers"), ("STOP", "ALL_INPUTS_CLOSED")]
    assert {e["kind"] for e in ours.of("sink", "event")} == {e["kind"] for e in ref.of("sink", "event")} == {"dora"}
    assert [e["type"] for e in ours.of("sink", "event")] == ["INPUT"] * 3 + ["INPUT_CLOSED", "STOP"]
    for run in (ref, ours):
        (ident,) = run.of("source", "dataflow_id")
        assert ident["is_str"] and ident["length"] > 0 and not ident["restart"] and ident["restart_count"] == 0, (
            run.impl,
            ident,
        )
        assert run.of("sink", "loop_ran")[0]["ticked"], run.impl
        ticks = [(e["id"], e["kind"], e["value_len"], e["value_type"]) for e in run.of("source", "tick")]
        assert ticks == [("tick", "dora", 0, "null")] * 3, run.impl


def test_node_api_same_on_both(tmp_path: Path, reference_python: Path) -> None:
    """dataflow_id(), is_restart(), restart_count(), event keys, kinds, values and metadata."""
    ref, ours = run_both(tmp_path, FLOW, {"source.py": SOURCE, "sink.py": SINK}, reference_python)
    assert_same_events(ref, ours)
    # dataflow_descriptor() and node_config() (dora's holds only inputs and outputs; ours the
    # node's whole entry, README)
    assert (
        ours.of("sink", "descriptor")
        == ref.of("sink", "descriptor")
        == [
            {
                "node": "sink",
                "what": "descriptor",
                "nodes": ["source", "sink"],
                "inputs": {"numbers": "source/numbers"},
                "outputs": [],
            }
        ]
    )
    # metadata["timestamp"]: the send time, a UTC datetime, on both
    for run in (ref, ours):
        stamps = [e["timestamp"] for e in run.of("sink", "event") if e["type"] == "INPUT"]
        assert stamps == [["datetime", 0.0, True]] * 3, (run.impl, stamps)
    # dora 1.1 dropped event["data"]; dora_zmq keeps it (older dora code reads it), so the key
    # is present on INPUT events here and absent there (README, "Differences from dora-rs").
    assert {e["data_key"] for e in ref.of("sink", "event") if e["type"] == "INPUT"} == {False}
    assert {e["data_key"] for e in ours.of("sink", "event") if e["type"] == "INPUT"} == {True}


def test_recv_async_same_on_both(tmp_path: Path, reference_python: Path) -> None:
    """``await node.recv_async()`` gets every event without blocking the event loop, on both."""
    ref, ours = run_both(tmp_path, FLOW, {"source.py": SOURCE, "sink.py": ASYNC_SINK}, reference_python)
    assert_same_events(ref, ours)


SLOW_SOURCE = """
import time
import pyarrow as pa
from dora import Node

node = Node()
time.sleep(1.0)  # the sink times out first, even on a loaded machine
for i in range(5):
    node.send_output("numbers", pa.array([i, i * 10]), {"n": i, "label": "x"})
    time.sleep(0.02)
"""

TIMEOUT_SINK = """
import asyncio
from dora import Node
from compat_record import record

node = Node()

def describe(event):
    if event is None:
        return {"type": None}
    return {"type": event["type"], "timeout": str(event.get("error", "")).startswith("Timeout")}

record("sink", "next_timeout", **describe(node.next(timeout=0.05)))

async def main():
    record("sink", "recv_async_timeout", **describe(await node.recv_async(timeout=0.05)))
    while (event := await node.recv_async()) is not None:
        if event["type"] == "INPUT":
            record("sink", "value", value=event["value"].to_pylist())

asyncio.run(main())
"""


def test_timeouts_same_on_both(tmp_path: Path, reference_python: Path) -> None:
    """``next(timeout)`` and ``recv_async(timeout)`` give an ERROR event ("Timeout...") when
    nothing came: None means only that the stream ended, on both."""
    ref, ours = run_both(tmp_path, FLOW, {"source.py": SLOW_SOURCE, "sink.py": TIMEOUT_SINK}, reference_python)
    assert ref.returncode == 0, ref.output[-3000:]
    assert ours.returncode == 0, ours.output[-3000:]
    for what in ("next_timeout", "recv_async_timeout"):
        assert [r["type"] for r in ours.of("sink", what)] == [r["type"] for r in ref.of("sink", what)] == ["ERROR"], (
            what
        )
        assert ours.of("sink", what)[0]["timeout"] and ref.of("sink", what)[0]["timeout"], what
    assert sorted(r["value"] for r in ours.of("sink", "value")) == sorted(r["value"] for r in ref.of("sink", "value"))
    assert len(ours.of("sink", "value")) == 5


CANCELLING_SINK = """
import asyncio
from dora_zmq import Node
from compat_record import record

node = Node()

async def main():
    cancelled = 0
    values = []
    while not values:  # cancel waits until the first message: none may be lost to it
        try:
            event = await asyncio.wait_for(node.recv_async(), 0.01)
        except asyncio.TimeoutError:
            cancelled += 1
            continue
        values.append(event["value"].to_pylist())
    async for event in node:
        if event["type"] == "INPUT":
            values.append(event["value"].to_pylist())
    record("sink", "done", cancelled=cancelled, values=values)

asyncio.run(main())
"""


def test_async_for_and_cancelled_recv_async(tmp_path: Path) -> None:
    """dora_zmq only (dora-rs 1.1 has no ``async for`` on a node): a ``recv_async`` cancelled
    by ``wait_for`` loses no event, and ``async for`` reads the rest."""
    sink = CANCELLING_SINK.replace("from dora_zmq import Node", "from dora import Node")
    run = run_flow("dora_zmq", tmp_path, FLOW, {"source.py": SLOW_SOURCE, "sink.py": sink}, None)
    assert run.returncode == 0, run.output[-3000:]
    (done,) = run.of("sink", "done")
    assert done["cancelled"] > 5, done
    assert done["values"] == [[i, i * 10] for i in range(5)], done


BURST_SOURCE = """
import time
import pyarrow as pa
from dora import Node

node = Node()
for i in range(3):
    node.send_output("numbers", pa.array([i, i * 10]), {"n": i, "label": "x"})
time.sleep(1.5)  # the sink drains meanwhile
"""

DRAINING_SINK = """
import datetime
import time
from dora import Node
from compat_record import record

node = Node()
time.sleep(0.8)  # the three messages are waiting now
waiting = not node.is_empty()
drained = [e["value"].to_pylist() for e in node.drain() if e["type"] == "INPUT"]
record("sink", "drain", waiting=waiting, drained=drained, then_empty=node.is_empty(), try_recv=node.try_recv())
node.log_info("drained")
stamp = node.timestamp()
record("sink", "timestamp", is_datetime=isinstance(stamp, datetime.datetime), aware=stamp.tzinfo is not None)
record("sink", "rest", types=[e["type"] for e in node])
"""


def test_drain_try_recv_is_empty_log_timestamp(tmp_path: Path, reference_python: Path) -> None:
    """dora 1.1's non-blocking reads and helpers: ``is_empty``, ``drain``, ``try_recv``,
    ``log_info`` and ``timestamp`` behave the same on both."""
    ref, ours = run_both(tmp_path, FLOW, {"source.py": BURST_SOURCE, "sink.py": DRAINING_SINK}, reference_python)
    assert ref.returncode == 0, ref.output[-3000:]
    assert ours.returncode == 0, ours.output[-3000:]
    for what in ("drain", "timestamp", "rest"):
        assert ours.of("sink", what) == ref.of("sink", what), what
    assert ours.of("sink", "drain")[0]["drained"] == [[0, 0], [1, 10], [2, 20]]
    assert ours.of("sink", "rest")[0]["types"] == ["INPUT_CLOSED", "STOP"]
    assert "drained" in ours.output and "drained" in ref.output
