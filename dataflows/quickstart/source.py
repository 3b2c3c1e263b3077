"""Source: on each timer tick, send a batch of simulated sensor readings (float64)."""

import os

import numpy as np
import pyarrow as pa

from dora_zmq import Node

COUNT = int(os.environ.get("COUNT", "20"))


def main() -> None:
    node = Node()
    rng = np.random.default_rng(0)
    sent = 0
    for event in node:
        if event["type"] == "INPUT" and event["id"] == "tick":
            readings = rng.normal(20.0, 1.5, size=8)
            node.send_output("readings", pa.array(readings), {"batch": sent})
            sent += 1
            if sent == COUNT:
                break
    print(f"source: sent {sent} batches")


if __name__ == "__main__":
    main()
