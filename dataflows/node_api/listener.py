"""Listener: the older tuple loop (dora's first Python API), with values as bytes."""

import numpy as np

from dora_zmq import Node


def main() -> None:
    node = Node()
    texts, centroids = [], []
    # Only INPUT events, as (input id, value as bytes, metadata); ends when the stream ends.
    for input_id, value, metadata in node.inputs():
        if input_id == "text":
            texts.append(value.decode())
        elif input_id == "centroid":
            x, y = np.frombuffer(value, dtype=np.float64)  # the raw bytes of a float64 array
            centroids.append((x, y))
            print(f"listener: centroid ({x:.1f}, {y:.1f}) of tick {metadata['tick']} via {metadata['relayed_by']}")
    print(f"listener: {len(texts)} texts, {len(centroids)} centroids, last text {texts[-1] if texts else None!r}")


if __name__ == "__main__":
    main()
