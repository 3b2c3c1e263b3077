"""Source that sends COUNT numbered messages on each output right after Node(), then ends.

env: COUNT        messages per output (default 1)
     WAIT_INPUT   wait for one INPUT event first (e.g. an ack that the data arrived)
     FINISH       how to end: "exit" (default), "raise" or "sigkill"
"""

import os
import signal

import pyarrow as pa

from dora_zmq import Node

COUNT = int(os.environ.get("COUNT", "1"))
FINISH = os.environ.get("FINISH", "exit")

node = Node()
outputs = node.node_config().get("outputs", [])
for i in range(COUNT):
    for output in outputs:
        node.send_output(output, pa.array([i]), {"seq": i, "output": output})
print(f"burst: sent {COUNT} on {','.join(outputs)}", flush=True)
if os.environ.get("WAIT_INPUT"):
    event = node.next(timeout=15)
    print(f"burst: got {event and event['type']} {event and event['id']}", flush=True)
if FINISH == "raise":
    raise RuntimeError("burst failed on purpose: boom-42")
if FINISH == "sigkill":
    os.kill(os.getpid(), signal.SIGKILL)
