"""A small real detector: finds saturated colour blobs with NumPy, YOLO-style output.

``ColourBlobDetector()(frame)`` returns ``(boxes_xyxy, conf, label)`` arrays, the three things
a YOLO user reads from ``results[0].boxes.xyxy / .conf / .cls``.
"""

import numpy as np

# label -> channel index in a BGR frame
CHANNELS = {0: 2, 1: 1, 2: 0}
NAMES = {0: "red", 1: "green", 2: "blue"}


class ColourBlobDetector:
    def __init__(self, threshold: int = 200, min_pixels: int = 100) -> None:
        self.threshold = threshold
        self.min_pixels = min_pixels

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        boxes, conf, label = [], [], []
        for cls, ch in CHANNELS.items():
            others = [c for c in range(3) if c != ch]
            mask = (frame[:, :, ch] > self.threshold) & (frame[:, :, others].max(axis=2) < 80)
            if mask.sum() < self.min_pixels:
                continue
            ys, xs = np.nonzero(mask)
            x1, x2, y1, y2 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
            boxes.append((x1, y1, x2, y2))
            conf.append(mask.sum() / ((x2 - x1) * (y2 - y1)))  # how solid the box is
            label.append(cls)
        return (
            np.array(boxes, dtype=np.float32).reshape(-1, 4),
            np.array(conf, dtype=np.float32),
            np.array(label, dtype=np.float32),
        )
