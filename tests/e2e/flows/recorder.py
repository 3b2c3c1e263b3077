"""Sink that prints every event as ``EVENT {json}``, then checks the stream really ended.

env: SLOW_START_S  sleep before Node() (a late subscriber, for the start barrier)
     SLEEP_S       sleep after each INPUT (a slow consumer)
     READY_AFTER   print READY after this many inputs (default 1)
     ACK_OUTPUT    send b"ack" on this output once ACK_AFTER inputs arrived

A value whose JSON is longer than 16 KiB is printed as {"sha256": ..., "json_length": ...} of
that JSON (see ``value_digest``): daemons cut output lines at 64 KiB.
"""

import hashlib
import json
import os
import time

if os.environ.get("SLOW_START_S"):
    time.sleep(float(os.environ["SLOW_START_S"]))

from dora_zmq import Node  # noqa: E402 - after the deliberate slow start

SLEEP_S = float(os.environ.get("SLEEP_S", "0"))
READY_AFTER = int(os.environ.get("READY_AFTER", "1"))
ACK_OUTPUT = os.environ.get("ACK_OUTPUT")
ACK_AFTER = int(os.environ.get("ACK_AFTER", "1"))

MAX_INLINE = 16 * 1024


def value_digest(value: object) -> object:
    """``value`` itself, or the digest of its JSON when that is too long for one log line."""
    text = json.dumps(value)
    if len(text) <= MAX_INLINE:
        return value
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "json_length": len(text)}


node = Node()
inputs = 0
for event in node:
    record = {"type": event["type"], "id": event["id"]}
    if event["type"] == "INPUT":
        record["value"] = value_digest(event["value"].to_pylist())
        record["metadata"] = event["metadata"]
    if "error" in event:
        record["error"] = event["error"]
    print("EVENT " + json.dumps(record, default=str), flush=True)
    if event["type"] == "INPUT":
        inputs += 1
        if inputs == READY_AFTER:
            print("READY", flush=True)
        if ACK_OUTPUT and inputs == ACK_AFTER:
            node.send_output(ACK_OUTPUT, b"ack")
        if SLEEP_S:
            time.sleep(SLEEP_S)
# The loop ended because next() returned None: it must keep doing so.
assert node.next(timeout=0.2) is None
print(f"END after {inputs} inputs, dropped {json.dumps(node.dropped)}", flush=True)
