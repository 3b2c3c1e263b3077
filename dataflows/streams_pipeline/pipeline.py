"""A node whose body is a composition: source bridge >> resize >> detect >> sink bridge."""

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

from dora_zmq import Node
from dora_zmq.streams import Composition, Gizmo, StreamData
from dora_zmq.streams.bridges import NodeSinkGizmo, NodeSourceGizmo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "object_detection"))
from colour_blobs import ColourBlobDetector  # noqa: E402

HEIGHT, WIDTH = 480, 640
SCALE = 0.5


class ResizeGizmo(Gizmo):
    """Downscales frames by SCALE (nearest neighbour) and records the factor under "Resize"."""

    def __init__(self) -> None:
        super().__init__([(4, True)])  # keep the newest 4 frames; drop older ones if we fall behind

    def run(self) -> None:
        step = int(1 / SCALE)
        for item in self.get_input(0):
            if self._abort:
                break
            frame = item.data.to_numpy().reshape(HEIGHT, WIDTH, 3)
            small = frame[::step, ::step]
            meta = item.meta.clone()
            meta.append({"scale": SCALE, "size": [int(small.shape[1]), int(small.shape[0])]}, "Resize")
            self.send_result(StreamData(small, meta))


class DetectGizmo(Gizmo):
    """Runs the detector; appends a summary under "Inference"; sends the flat bbox array."""

    def __init__(self) -> None:
        super().__init__([(4, False)])
        self.detector = ColourBlobDetector(min_pixels=25)

    def run(self) -> None:
        for item in self.get_input(0):
            if self._abort:
                break
            boxes, conf, label = self.detector(item.data)
            flat = np.concatenate((boxes, conf[:, None], label[:, None]), axis=1).ravel()
            meta = item.meta.clone()
            meta.append({"detections": int(len(boxes)), "model": "colour-blobs"}, "Inference")
            self.send_result(StreamData(pa.array(flat), meta))


def main() -> None:
    node = Node()
    source = NodeSourceGizmo(node, "image")
    resize, detect = ResizeGizmo(), DetectGizmo()
    sink = NodeSinkGizmo(node, "bbox")
    source >> resize >> detect >> sink
    with Composition(source) as composition:
        pass  # leaving the block waits for the pipeline to finish (the camera's input closes)
    print(f"pipeline: done, queue sizes {composition.get_current_queue_sizes()}")


if __name__ == "__main__":
    main()
