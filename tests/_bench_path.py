"""The benchmark's modules, for the tests of benchmarks/ (they import each other by bare names)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"


@contextmanager
def benchmark_modules() -> Iterator[None]:
    """Imports inside this block find benchmarks/ and benchmarks/nodes; sys.path is restored after."""
    paths = [str(BENCH), str(BENCH / "nodes")]
    sys.path[:0] = paths
    try:
        yield
    finally:
        for p in paths:
            sys.path.remove(p)
