"""Plot operator, written in dora's older `on_input` form: prints detections.

A real deployment would draw the boxes with OpenCV; here each frame's detections are logged.
"""

import numpy as np

from dora_zmq import DoraStatus

NAMES = {0: "red", 1: "green", 2: "blue"}


class Operator:
    def __init__(self):
        self.frames = 0
        self.detections = 0

    def on_input(self, dora_input, send_output) -> DoraStatus:
        if dora_input["id"] == "image":
            self.frames += 1
        elif dora_input["id"] == "bbox":
            boxes = np.asarray(dora_input["value"].to_numpy()).reshape(-1, 6)
            self.detections += len(boxes)
            found = ", ".join(
                f"{NAMES.get(int(b[5]), int(b[5]))}@({b[0]:.0f},{b[1]:.0f})-({b[2]:.0f},{b[3]:.0f}) {b[4]:.2f}" for b in boxes
            )
            print(f"plot: frame {self.frames}: {found}")
        return DoraStatus.CONTINUE

