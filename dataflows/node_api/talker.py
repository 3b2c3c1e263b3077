"""Talker: Node(), the descriptor calls, next(timeout=...), and send_output of every kind."""

import os

import pyarrow as pa

import dora_zmq
from dora_zmq import Node

COUNT = int(os.environ.get("COUNT", "5"))

POINT = pa.struct([("x", pa.float64()), ("y", pa.float64()), ("label", pa.string())])


def send_tick(node: Node, tick: int, timer_metadata: dict) -> None:
    # metadata["timestamp"]: when the tick (or a message) was sent, a UTC datetime
    metadata = {"tick": tick, "timer_ns": int(timer_metadata["timestamp"].timestamp() * 1e9)}
    # bytes: sent as a UInt8 array; receivers get them back in event["data"]
    node.send_output("text", f"hello {tick}".encode(), metadata)
    # a nested type: a struct array (one row per point)
    points = pa.array([{"x": float(tick + i), "y": float(2 * i), "label": f"p{i}"} for i in range(3)], type=POINT)
    node.send_output("points", points, metadata)
    # another nested type: a list array (one row holding the ticks so far)
    node.send_output("history", pa.array([list(range(tick + 1))], type=pa.list_(pa.int64())), metadata)


def main() -> None:
    node = Node()  # configured from the environment the daemon sets
    print(f"talker: dora_zmq {dora_zmq.__version__}, dataflow {node.dataflow_id}")
    descriptor = node.dataflow_descriptor()  # the whole YAML, parsed
    print(f"talker: nodes in the dataflow: {', '.join(n['id'] for n in descriptor['nodes'])}")
    config = node.node_config()  # this node's own YAML entry
    print(f"talker: outputs {', '.join(config['outputs'])}, COUNT={config['env']['COUNT']}")

    # next() blocks until an event arrives; after `timeout` seconds it gives an ERROR event
    # (None means the stream has ended).
    event = node.next(timeout=10.0)
    if event is None or event["type"] == "ERROR":
        raise RuntimeError("talker: no timer tick within 10 s")
    tick = 0
    while event is not None:
        if event["type"] == "INPUT" and event["id"] == "tick":
            send_tick(node, tick, event["metadata"])
            tick += 1
            if tick == COUNT:
                break  # leaving ends our outputs: downstream inputs close
        elif event["type"] == "STOP":
            print(f"talker: asked to stop ({event['id']})")
            break
        event = node.next()
    print(f"talker: sent {tick} ticks")


if __name__ == "__main__":
    main()
