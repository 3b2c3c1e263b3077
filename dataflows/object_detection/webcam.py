"""A camera stand-in: frames (H x W x 3, uint8, BGR like OpenCV) with moving coloured squares."""

import os

import numpy as np
import pyarrow as pa

from dora_zmq import Node

CAMERA_WIDTH = 640
CAMERA_HEIGHT = 480
FRAMES = int(os.environ.get("FRAMES", "40"))
# (B, G, R) colours; the detector's labels are their indices.
COLOURS = [(0, 0, 255), (0, 255, 0), (255, 0, 0)]


def draw(i: int) -> np.ndarray:
    frame = np.full((CAMERA_HEIGHT, CAMERA_WIDTH, 3), 30, dtype=np.uint8)
    for label, colour in enumerate(COLOURS):
        x = (40 + 150 * label + 7 * i) % (CAMERA_WIDTH - 80)
        y = (60 + 120 * label + 3 * i) % (CAMERA_HEIGHT - 80)
        frame[y : y + 60 + 10 * label, x : x + 60 + 10 * label] = colour
    return frame


def main() -> None:
    node = Node()
    sent = 0
    for event in node:
        if event["type"] == "INPUT" and event["id"] == "tick":
            node.send_output("image", pa.array(draw(sent).ravel()), event["metadata"])
            sent += 1
            if sent == FRAMES:
                break
    print(f"webcam: sent {sent} frames")


if __name__ == "__main__":
    main()
