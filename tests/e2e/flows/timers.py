"""Counts timer ticks per input for DURATION_S seconds, prints ``COUNTS {json}``, ends."""

import json
import os
import time

from dora_zmq import Node

DURATION_S = float(os.environ.get("DURATION_S", "1.0"))

node = Node()
counts: dict[str, int] = {}
start = None
while True:
    event = node.next(timeout=5)
    assert event is not None and event["type"] == "INPUT", event
    now = time.monotonic()
    if start is None:
        start = now  # count from the first tick, so start-up time does not matter
    elif now - start >= DURATION_S:
        break
    counts[event["id"]] = counts.get(event["id"], 0) + 1
    assert len(event["value"]) == 0 and "timestamp" in event["metadata"], event
print("COUNTS " + json.dumps({"elapsed": now - start, "counts": counts}), flush=True)
