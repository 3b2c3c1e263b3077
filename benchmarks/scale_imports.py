"""What importing costs a node: time and RSS per statement, and ``python -X importtime`` by module.

Each statement runs in a fresh interpreter (``python -c``) that reads its own RSS
(``/proc/self/status``) before and after; the median of ``repeat`` runs is reported. The
breakdown sums ``-X importtime``'s *self* time per module group (top-level package, or
``dora_zmq.<subpackage>``) of one ``from dora_zmq import Node``, and names the groups a plain
node (no tracing, no shared memory, no CURVE, no descriptor) should not need to import.
"""

from __future__ import annotations

import json
import statistics
import subprocess
from typing import Any

#: statements measured, in a fresh interpreter each
STATEMENTS = ("pass", "import numpy", "import pyarrow", "import zmq", "import dora_zmq", "from dora_zmq import Node")
# dora-rs' module imports pyarrow only once a node handles a value: the last line is a node's real cost
DORA_RS_STATEMENTS = ("pass", "import pyarrow", "from dora import Node", "import pyarrow; from dora import Node")

#: module groups a node that never traces, never uses shared memory or CURVE and does not parse
#: a descriptor has no use for (candidates to import lazily); numpy is not one: pyarrow imports it
DEFERRABLE = (
    "opentelemetry",
    "google",
    "asyncio",
    "yaml",
    "rich",
    "click",
    "psutil",
    "concurrent",
    "zmq.auth",
    "dora_zmq.tracing",
    "dora_zmq.descriptor",
    "dora_zmq.security",
    "dora_zmq._shm",
    "dora_zmq.graph",
    "dora_zmq.cli",
    "dora_zmq.recording",
    "dora_zmq.operators",
    "requests",
    "urllib3",
    "http",
    "email",
    "importlib_metadata",
    "multiprocessing",
    "ssl",
)

_PROBE = """
import time, sys
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) * 1024
r0 = rss(); t0 = time.perf_counter()
exec(sys.argv[1])
t1 = time.perf_counter(); r1 = rss()
import json; print(json.dumps({"s": t1 - t0, "rss0": r0, "rss1": r1, "modules": len(sys.modules)}))
"""


def cost(python: str, statements: tuple[str, ...] = STATEMENTS, repeat: int = 3) -> dict[str, Any]:
    """``{statement: {seconds, rss_MB (process after), added_MB, modules}}``, medians of ``repeat``."""
    out: dict[str, Any] = {}
    for stmt in statements:
        runs = []
        for _ in range(repeat):
            r = subprocess.run([python, "-c", _PROBE, stmt], capture_output=True, text=True, timeout=120, check=False)
            if r.returncode != 0:
                out[stmt] = {"error": r.stderr.strip()[-300:]}
                break
            runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
        else:
            out[stmt] = {
                "seconds": statistics.median(x["s"] for x in runs),
                "rss_MB": statistics.median(x["rss1"] for x in runs) / 1e6,
                "added_MB": statistics.median(x["rss1"] - x["rss0"] for x in runs) / 1e6,
                "modules": runs[0]["modules"],
            }
    return out


def group_of(module: str) -> str:
    """``dora_zmq.node._x`` -> ``dora_zmq.node``; ``zmq.auth.thread`` -> ``zmq.auth``; else top level."""
    parts = module.split(".")
    if parts[0] in ("dora_zmq", "zmq") and len(parts) > 1 and (parts[0] == "dora_zmq" or parts[1] == "auth"):
        return ".".join(parts[:2])
    return parts[0]


def parents(importtime_stderr: str) -> tuple[dict[str, str], list[str]]:
    """``{module: the module whose import imported it}`` and the modules in import order.

    ``-X importtime`` prints a module after its own imports (post-order), indented by depth.
    """
    parent: dict[str, str] = {}
    order: list[str] = []
    pending: list[tuple[int, str]] = []
    for line in importtime_stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        raw = line.split("|")[2]
        name, depth = raw.strip(), len(raw) - len(raw.lstrip())
        while pending and pending[-1][0] > depth:
            parent[pending.pop()[1]] = name
        pending.append((depth, name))
        order.append(name)
    return parent, order


def chain(parent: dict[str, str], module: str) -> list[str]:
    """``[imported by the statement, ..., module]``."""
    out = [module]
    while out[-1] in parent:
        out.append(parent[out[-1]])
    return out[::-1]


def importtime(python: str, stmt: str = "from dora_zmq import Node", repeat: int = 3) -> dict[str, Any]:
    """Self time (ms) per module group, median of ``repeat`` runs; groups sorted, costliest first."""
    per_run: list[dict[str, float]] = []
    total: list[float] = []
    for _ in range(repeat):
        r = subprocess.run(
            [python, "-X", "importtime", "-c", stmt], capture_output=True, text=True, timeout=120, check=False
        )
        groups: dict[str, float] = {}
        cum = 0.0
        for line in r.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            self_us, cum_us, raw = line[len("import time:") :].split("|")
            name = raw.strip()
            g = group_of(name)
            groups[g] = groups.get(g, 0.0) + int(self_us) / 1000
            if len(raw) - len(raw.lstrip()) == 1:  # imported by the statement itself, not nested
                cum += int(cum_us) / 1000
        per_run.append(groups)
        total.append(cum)
        parent, order = parents(r.stderr)
    names = {g for run in per_run for g in run}
    med = {g: statistics.median(run.get(g, 0.0) for run in per_run) for g in names}
    rows = sorted(med.items(), key=lambda kv: -kv[1])
    return {
        "statement": stmt,
        "total_ms": statistics.median(total),
        "groups_ms": dict(rows),
        "deferrable": {g: ms for g, ms in rows if _deferrable(g)},
        # how each deferrable group gets imported: its first module's chain of importers
        "chains": {g: chain(parent, next(m for m in order if group_of(m) == g)) for g in names if _deferrable(g)},
    }


def _deferrable(group: str) -> bool:
    return any(group == d or group.startswith(d + ".") for d in DEFERRABLE)
