"""Records when each timer input ticked for DURATION_S seconds, prints ``TICKS {json}``, ends.

The times are the ticks' ``timestamp`` metadata (when the timer fired, in seconds), so the
test measures the timer itself, not how late this process got to read each tick.
"""

import json
import os
import time

from dora_zmq import Node

DURATION_S = float(os.environ.get("DURATION_S", "1.0"))

node = Node()
ticks: dict[str, list[float]] = {}
start = None
while True:
    event = node.next(timeout=5)
    assert event is not None and event["type"] == "INPUT", event
    now = time.monotonic()
    if start is None:
        start = now  # count from the first tick, so start-up time does not matter
    elif now - start >= DURATION_S:
        break
    assert len(event["value"]) == 0 and "timestamp" in event["metadata"], event
    ticks.setdefault(event["id"], []).append(event["metadata"]["timestamp"].timestamp())
print("TICKS " + json.dumps(ticks), flush=True)
