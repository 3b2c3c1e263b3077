"""The synthetic scene the camera films: a bright square moving on a dark background.

Shared by the camera (to draw it) and the display (to check the detector found it), so the
example verifies itself end to end without any real camera or model.
"""

import numpy as np

WIDTH, HEIGHT, SIZE = 64, 48, 6


def square_at(frame: int) -> tuple[int, int]:
    """Top-left corner of the square in frame ``frame`` (a deterministic zig-zag)."""
    return (frame * 5) % (WIDTH - SIZE), (frame * 3) % (HEIGHT - SIZE)


def render(frame: int) -> np.ndarray:
    """One grayscale frame (HEIGHT x WIDTH, uint8) with a little deterministic noise."""
    rng = np.random.default_rng(frame)
    image = rng.integers(0, 40, size=(HEIGHT, WIDTH), dtype=np.uint8)
    x, y = square_at(frame)
    image[y : y + SIZE, x : x + SIZE] = 255
    return image
