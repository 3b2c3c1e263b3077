"""Reads the upstream node's StreamMeta: scales boxes back with the "Resize" factor."""

import numpy as np

from dora_zmq import Node
from dora_zmq.streams import Composition, FunctionGizmo, SinkGizmo
from dora_zmq.streams.bridges import NodeSourceGizmo


def to_full_size(item_data):
    return np.asarray(item_data.to_numpy()).reshape(-1, 6)


def main() -> None:
    node = Node()
    source = NodeSourceGizmo(node, "bbox")
    boxes = FunctionGizmo(to_full_size, name="Boxes")
    sink = SinkGizmo(collect=True)
    source >> boxes >> sink
    with Composition(source):
        pass
    for item in sink.results:
        resize = item.meta.find_last("Resize")  # appended by a gizmo in the *pipeline* node
        inference = item.meta.find_last("Inference")
        scale = resize["scale"]
        full = item.data[:, :4] / scale
        print(f"display: {inference['detections']} boxes from {inference['model']}, resized {resize['size']}, first at {full[0].round().tolist()}")
    print(f"display: {len(sink.results)} frames")


if __name__ == "__main__":
    main()
