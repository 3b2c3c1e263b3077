"""Transform: scale every reading by FACTOR, keep the metadata (and so the trace) attached."""

import os

import pyarrow.compute as pc

from dora_zmq import Node

FACTOR = float(os.environ.get("FACTOR", "2.0"))


def main() -> None:
    node = Node()
    for event in node:
        if event["type"] == "INPUT":
            node.send_output("scaled", pc.multiply(event["value"], FACTOR), event["metadata"])
        elif event["type"] == "STOP":
            print(f"transform: stopping ({event['id']})")


if __name__ == "__main__":
    main()
