"""Detection operator (the shape of dora's object-detection example): frames in, `bbox` out.

To use YOLO instead: `pip install ultralytics`, put yolov8n.pt next to this file, run with
DETECTOR=yolo. The output format is the same either way.
"""

import os

import numpy as np
import pyarrow as pa

from dora_zmq import DoraStatus

CAMERA_WIDTH = 640
CAMERA_HEIGHT = 480


def load_model():
    if os.environ.get("DETECTOR") == "yolo":
        from ultralytics import YOLO  # optional: not installed by default

        model = YOLO("yolov8n.pt")

        def detect(frame):
            results = model(frame[:, :, ::-1])  # BGR -> RGB; includes NMS
            boxes = results[0].boxes
            return np.array(boxes.xyxy.cpu()), np.array(boxes.conf.cpu()), np.array(boxes.cls.cpu())

        return detect
    from colour_blobs import ColourBlobDetector  # a helper next to this file

    return ColourBlobDetector()


class Operator:
    """Infers objects from images."""

    def __init__(self):
        self.model = load_model()
        self.frames = 0

    def on_event(self, dora_event, send_output) -> DoraStatus:
        if dora_event["type"] == "INPUT":
            frame = dora_event["value"].to_numpy().reshape((CAMERA_HEIGHT, CAMERA_WIDTH, 3))
            boxes, conf, label = self.model(frame)
            arrays = np.concatenate((boxes, conf[:, None], label[:, None]), axis=1)
            send_output("bbox", pa.array(arrays.ravel()), dora_event["metadata"])
            self.frames += 1
        elif dora_event["type"] == "STOP":
            print(f"object_detection: processed {self.frames} frames")
        return DoraStatus.CONTINUE
