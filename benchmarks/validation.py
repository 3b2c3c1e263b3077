"""What validating received Arrow values costs per message, by type and size (in-process).

A receiver validates every value it rebuilt from a peer's IPC description (``dora_zmq._wire._guard``):
``validate(full=True)`` walks offsets, dictionary indices and null counts, so it grows with the
value; a flat value (fixed width, no nulls: the benchmark's UInt8 payload) is rebuilt from the
frame's size and is not validated at all. This measures, for the same message, the whole
``decode_frames`` (validation included) and the checks alone (the refusal of compressed bodies,
a walk of the IPC metadata, plus ``validate(full=True)``): median of ``repeat`` timings in µs.
Run by ``run.py`` after the dataflow tables (``--no-validation`` skips it), or alone:

    python benchmarks/validation.py --sizes 64,4096,409600
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
from rich.table import Table

from dora_zmq._wire import reject_compressed
from dora_zmq._wire import decode_frames, encode_data_frames, encode_topic

_TOPIC = encode_topic("bench", "out")


def _payloads(size: int) -> dict[str, pa.Array]:
    """Arrays of about ``size`` bytes of data, one per shape of layout."""
    rng = np.random.default_rng(size)
    n8 = max(1, size // 8)
    ints = pa.array(rng.integers(0, 1 << 40, n8))
    words = max(1, size // 12)  # 8-byte strings + a 4-byte offset each
    return {
        "uint8 (flat)": pa.array(rng.integers(0, 256, max(1, size), dtype=np.uint8)),
        "int64 with nulls": pa.array(ints.to_numpy(), mask=np.arange(n8) % 10 == 0),
        "string": pa.array([f"{i:08d}" for i in range(words)]),
        "list<int64>": pa.ListArray.from_arrays(np.arange(0, n8 + 1, 4).clip(max=n8).astype(np.int32), ints),
        "dictionary<string>": pa.array([f"k{i % 64}" for i in range(max(1, size // 4))]).dictionary_encode(),
    }


def _median_us(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t)
    return statistics.median(times) / 1000


def measure(sizes: list[int], repeat: int = 50) -> list[dict[str, Any]]:
    """One row per (type, size): decode µs (checks included), checks µs, their share."""
    rows = []
    for size in sizes:
        for name, value in _payloads(size).items():
            frames = [
                f.to_pybytes() if isinstance(f, pa.Buffer) else bytes(f)
                for f in encode_data_frames(_TOPIC, 0, value, None)
            ]
            got = decode_frames(frames).value
            assert got is not None and got.equals(value)
            flat = frames[1][3] == 4  # MessageKind.FLAT: rebuilt from the frame, not validated
            n = max(5, min(repeat, int(2e6 // max(size, 1))))  # fewer repeats for large values
            decode = _median_us(lambda frames=frames: decode_frames(frames), n)
            body = frames[3]

            def checks(body: bytes = body, got: pa.Array = got) -> None:  # what decode_frames adds for untrusted input
                reject_compressed(body)
                got.validate(full=True)

            check = 0.0 if flat else _median_us(checks, n)
            rows.append(
                {
                    "type": name,
                    "size": size,
                    "nbytes": value.nbytes,
                    "flat": flat,
                    "decode_us": decode,
                    "validate_us": check,
                    "share": check / decode if decode else 0.0,
                }
            )
    return rows


def validation_table(rows: list[dict[str, Any]], human: Callable[[int], str]) -> Table:
    """The rows as a table: per size and type, decode and validation µs per message."""
    table = Table(title="Validation on receive, per message (in-process, median µs)", title_justify="left")
    for col in ("size", "type", "decode µs (checks included)", "checks µs", "share"):
        table.add_column(col, justify="left" if col == "type" else "right")
    for r in rows:
        check = "none (flat)" if r["flat"] else f"{r['validate_us']:.1f}"
        table.add_row(
            human(r["size"]), r["type"], f"{r['decode_us']:.1f}", check, "" if r["flat"] else f"{r['share']:.0%}"
        )
    return table


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="64,4096,409600,4096000", help="comma-separated sizes in bytes")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    Console().print(validation_table(measure(sizes), lambda n: f"{n:,} B"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
