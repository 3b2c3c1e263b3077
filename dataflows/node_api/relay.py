"""Relay: iterates over events and reads every key of them; forwards data with its metadata."""

import pyarrow as pa
import pyarrow.compute as pc

from dora_zmq import Node


def main() -> None:
    node = Node()
    history_lengths = []
    for event in node:  # ends (the loop exits) after STOP
        kind = event["type"]
        if kind == "INPUT":
            input_id, value, metadata = event["id"], event["value"], event["metadata"]
            if input_id == "text":
                # "data" is the value as bytes: what bytes sent with send_output look like
                print(f"relay: text {event['data'].decode()!r} (tick {metadata['tick']})")
            elif input_id == "points":
                xs = pc.mean(value.field("x")).as_py()
                ys = pc.mean(value.field("y")).as_py()
                labels = value.field("label").to_pylist()
                print(f"relay: {len(value)} points {labels}, centroid ({xs:.1f}, {ys:.1f})")
                # forward with the input's metadata (and so its trace context), plus our own key
                node.send_output("centroid", pa.array([xs, ys]), {**metadata, "relayed_by": node.id})
            elif input_id == "history":
                history_lengths.append(len(value[0]))
        elif kind == "INPUT_CLOSED":
            print(f"relay: input {event['id']} closed")
        elif kind == "STOP":
            print(f"relay: stop ({event['id']})")
        elif kind == "ERROR":
            print(f"relay: error {event['error']}")
    print(f"relay: history lengths {history_lengths}")


if __name__ == "__main__":
    main()
