"""Detector (machine "compute"): the bounding box of the bright pixels of each frame.

It passes the frame's metadata on with the box, so the display knows which frame a box
belongs to and the trace of a frame continues through this node.
"""

import numpy as np
import pyarrow as pa

from dora_zmq import Node

THRESHOLD = 128


def bounding_box(image: np.ndarray) -> list[int]:
    """``[x, y, w, h]`` of the pixels above THRESHOLD, or ``[-1, -1, 0, 0]`` if none."""
    ys, xs = np.nonzero(image > THRESHOLD)
    if len(xs) == 0:
        return [-1, -1, 0, 0]
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def main() -> None:
    node = Node()
    handled = 0
    for event in node:
        if event["type"] == "INPUT":
            meta = event["metadata"]
            image = event["value"].to_numpy(zero_copy_only=False).reshape(meta["height"], meta["width"])
            node.send_output("box", pa.array(bounding_box(image), type=pa.int32()), meta)
            handled += 1
    print(f"detector: handled {handled} frames")


if __name__ == "__main__":
    main()
