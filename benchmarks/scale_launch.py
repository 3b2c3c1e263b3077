"""The start-up floor: the fleet graph as plain Python processes over raw ZeroMQ.

``python scale_launch.py dataflow.yml`` starts what ``dora run`` / ``dora-zmq run`` would start
for ``scale_flows.fleet(n)`` (one tick source and n sinks, each ``scale_node.py``), but with
nothing in between: this launcher imports only ``subprocess``, the source binds a PUB socket
on ipc and the sinks connect a SUB to it (``scale_node.py --role tick-source|sink``), each
importing what any Python node of such a graph imports (pyzmq, and pyarrow to hold the value).
No coordinator, no daemon, no registration, no start barrier: the time a Python process needs
to start, import and get its first message, which a framework in Python can approach but not
beat. Ctrl-C (SIGINT) is passed on to every node; the launcher exits when they all have.

Reading the YAML: the sinks are counted from their ``SCALE_ROLE: sink`` lines (the file is
``scale_flows.write``'s), so that no YAML parser is imported.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

NODE = str(Path(__file__).resolve().parent / "scale_node.py")
_KILL_AFTER_S = 5.0  # a node still there this long after SIGINT is killed (and named on stderr)


def main() -> int:
    flow = Path(sys.argv[1])
    sinks = sum(1 for line in flow.read_text().splitlines() if line.strip() == "SCALE_ROLE: sink")
    endpoint = f"ipc://{Path(os.environ['SCALE_DIR']).resolve()}/tick.ipc"
    roles = [("source", "tick-source")] + [(f"sink{i}", "sink") for i in range(sinks)]
    procs = [
        subprocess.Popen(
            [sys.executable, NODE, "--role", role, "--data", endpoint],
            env=dict(os.environ, SCALE_ID=node_id, SCALE_ROLE=role),
        )
        for node_id, role in roles
    ]

    def kill_the_rest() -> None:  # a node that did not leave on SIGINT: name it, kill it
        for p in procs:
            if p.poll() is None:
                sys.stderr.write(f"scale_launch: {p.args[3]} pid {p.pid} still there {_KILL_AFTER_S} s after SIGINT\n")
                p.kill()

    def forward(signum: int, frame: FrameType | None) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)
        timer = threading.Timer(_KILL_AFTER_S, kill_the_rest)
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return max(abs(p.wait()) for p in procs)


if __name__ == "__main__":
    sys.exit(main())
