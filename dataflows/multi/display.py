"""Display (machine "cam"): checks each box against the scene and prints a summary at the end."""

from dora_zmq import Node
from scene import SIZE, square_at


def main() -> None:
    node = Node()
    boxes = correct = 0
    for event in node:
        if event["type"] == "INPUT":
            boxes += 1
            x, y, w, h = event["value"].to_pylist()
            if (x, y) == square_at(event["metadata"]["frame"]) and (w, h) == (SIZE, SIZE):
                correct += 1
    print(f"display: {boxes} boxes, {correct} correct, lost {sum(node.lost.values())}")


if __name__ == "__main__":
    main()
