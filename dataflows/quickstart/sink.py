"""Sink: collect everything and print a summary when the inputs close."""

import pyarrow as pa
import pyarrow.compute as pc

from dora_zmq import Node


def main() -> None:
    node = Node()
    batches = []
    for event in node:
        if event["type"] == "INPUT":
            batches.append(event["value"])
        elif event["type"] == "INPUT_CLOSED":
            print(f"sink: input {event['id']} closed")
    if batches:
        values = pa.chunked_array(batches)
        print(
            f"sink: {len(batches)} batches, {len(values)} values, "
            f"mean {pc.mean(values).as_py():.2f}, min {pc.min(values).as_py():.2f}, max {pc.max(values).as_py():.2f}"
        )
    else:
        print("sink: received nothing")


if __name__ == "__main__":
    main()
