"""Timer-driven source: forwards a counter on each tick until STOP, printing what it sees.

env: IGNORE_STOP  after STOP keep running (``while True: time.sleep(0.1)``)
     IGNORE_TERM  also ignore SIGTERM (so only SIGKILL ends it)
"""

import os
import signal
import time

import pyarrow as pa

from dora_zmq import Node

if os.environ.get("IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

node = Node()
outputs = node.node_config().get("outputs", [])
ticks = 0
for event in node:
    if event["type"] == "INPUT":
        ticks += 1
        for output in outputs:
            node.send_output(output, pa.array([ticks]))
        if ticks == 3:
            print("READY", flush=True)
    elif event["type"] == "STOP":
        print(f"STOP {event['id']}", flush=True)
        if os.environ.get("IGNORE_STOP"):
            print("ignoring STOP", flush=True)
            while True:
                time.sleep(0.1)
print("ticker: done", flush=True)
