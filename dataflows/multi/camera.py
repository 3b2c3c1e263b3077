"""Camera (machine "cam"): one synthetic frame per timer tick, COUNT frames, then it ends.

Frames travel as flat uint8 Arrow arrays; their shape goes in the metadata, as dora's camera
nodes do.
"""

import os

import pyarrow as pa

from dora_zmq import Node
from scene import HEIGHT, WIDTH, render

COUNT = int(os.environ.get("COUNT", "30"))


def main() -> None:
    node = Node()
    sent = 0
    for event in node:
        if event["type"] == "INPUT" and event["id"] == "tick":
            image = render(sent)
            node.send_output("frame", pa.array(image.ravel()), {"frame": sent, "width": WIDTH, "height": HEIGHT})
            sent += 1
            if sent == COUNT:
                break
    print(f"camera: sent {sent} frames")


if __name__ == "__main__":
    main()
