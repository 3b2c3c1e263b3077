"""Import cost of a node: wall time, CPU time and RSS of ``import dora_zmq``, ``from dora_zmq
import Node`` and of an idle node process after ``Node()`` connected (issue 16, "memory").

Each figure is the median of ``--runs`` fresh interpreters. A probe reports its own CPU time
(``resource.getrusage``: user + system, the interpreter's start included; less sensitive than
wall time to the other processes of a shared machine) and its RSS (``VmRSS`` in
``/proc/self/status``); the wall time is the parent's, from spawn to exit.

The node figures come from a 2-node dataflow run with ``dora-zmq run``: a source sends one
message, the sink writes its figures once ``Node()`` returned and its first event arrived.

    python benchmarks/import_cost.py [--root DIR] [--runs 5]

``--root`` puts another checkout's ``dora_zmq`` first on ``PYTHONPATH`` (a "before" run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_PROBE = """
import resource, json, sys, time
{code}
ru = resource.getrusage(resource.RUSAGE_SELF)
rss = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS:'))
json.dump({{"cpu_s": ru.ru_utime + ru.ru_stime, "rss_kb": rss,
           "modules": len(sys.modules)}}, open({out!r}, "w"))
"""

_DATAFLOW = """
nodes:
  - id: source
    path: source.py
    inputs:
      tick: dora/timer/millis/20
    outputs:
      - out
  - id: sink
    path: sink.py
    inputs:
      in: source/out
"""

_SOURCE = """
from dora_zmq import Node
import pyarrow as pa
node = Node()
for event in node:
    if event["type"] == "INPUT":
        node.send_output("out", pa.array([1]))
        break
"""

_SINK = """
import resource, json, sys
from dora_zmq import Node
node = Node()
event = node.next(timeout=30)
ru = resource.getrusage(resource.RUSAGE_SELF)
rss = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS:'))
json.dump({"cpu_s": ru.ru_utime + ru.ru_stime, "rss_kb": rss, "modules": len(sys.modules),
           "event": event["type"] if event else None}, open(sys.argv[1], "w"))
"""


def _env(root: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DORA_ZMQ_KEYS"))}
    if root is not None:
        env["PYTHONPATH"] = f"{root}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep)
    return env


def _probe(code: str, env: dict[str, str], tmp: Path) -> dict[str, float]:
    out = tmp / "probe.json"
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", _PROBE.format(code=code, out=str(out))], env=env, check=True, timeout=60, cwd=tmp
    )
    wall = time.perf_counter() - start
    result: dict[str, float] = json.loads(out.read_text())
    result["wall_s"] = wall
    return result


def _node(env: dict[str, str], tmp: Path) -> dict[str, float]:
    flow = tmp / "flow"
    flow.mkdir(exist_ok=True)
    (flow / "dataflow.yml").write_text(_DATAFLOW)
    (flow / "source.py").write_text(_SOURCE)
    out = tmp / "sink.json"
    (flow / "sink.py").write_text(_SINK.replace("sys.argv[1]", repr(str(out))))
    out.unlink(missing_ok=True)
    subprocess.run(
        [sys.executable, "-m", "dora_zmq", "run", "dataflow.yml"],
        env=env,
        cwd=flow,
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    result: dict[str, float] = json.loads(out.read_text())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="a checkout whose dora_zmq to measure")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = _env(args.root)
    cases = {
        "python -c pass": "pass",
        "import pyarrow": "import pyarrow",
        "import dora_zmq": "import dora_zmq",
        "from dora_zmq import Node": "from dora_zmq import Node",
    }
    with tempfile.TemporaryDirectory(prefix="dzm-import-") as name:
        tmp = Path(name)
        rows: dict[str, list[dict[str, float]]] = {k: [] for k in [*cases, "idle node after Node()"]}
        for _ in range(args.runs):  # interleaved, so a busy moment spreads over every case
            for label, code in cases.items():
                rows[label].append(_probe(code, env, tmp))
            rows["idle node after Node()"].append(_node(env, tmp))
    print(f"| what | wall s | CPU s | RSS MB | modules |   (medians of {args.runs})")
    print("| --- | --- | --- | --- | --- |")
    for label, runs in rows.items():
        wall = statistics.median(r["wall_s"] for r in runs) if "wall_s" in runs[0] else float("nan")
        cpu = statistics.median(r["cpu_s"] for r in runs)
        rss = statistics.median(r["rss_kb"] for r in runs) / 1024
        mods = statistics.median(r["modules"] for r in runs)
        print(f"| {label} | {wall:.3f} | {cpu:.3f} | {rss:.1f} | {mods:.0f} |")


if __name__ == "__main__":
    main()
