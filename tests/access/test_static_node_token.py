"""A node the daemon spawns registers once, and only the process the daemon started can do it.

The daemon gives each node it spawns a one-time token (``DORA_ZMQ_NODE_TOKEN``). Before, any
process that reached the daemon's socket could register as any static node, before or after
it, and received that node's setup (the whole YAML, with its ``env:``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dora_zmq.testing import write_dataflow

pytestmark = pytest.mark.timeout(60)

_SOURCE = """
import pyarrow as pa
from dora_zmq import Node

node = Node()
for i in range(1, 6):
    node.send_output("value", pa.array([i]))
"""

_SINK = """
from dora_zmq import Node

node = Node()
got = [event["value"].to_pylist()[0] for event in node if event["type"] == "INPUT"]
print(f"sink got {got}", flush=True)
"""

_IMPOSTOR = """
import os

from dora_zmq import _control as ctl
from dora_zmq._transport import Channel

address, df = os.environ["DORA_ZMQ_DAEMON"], os.environ["DORA_DATAFLOW_ID"]
mine = os.environ[ctl.ENV_NODE_TOKEN]


def register(node, token):
    ch = Channel.connect(address)
    try:
        reply = ch.request(ctl.RegisterNode(df, node, os.getpid(), ctl.PROTOCOL_VERSION, "", token), 20)
    finally:
        ch.close()
    return type(reply).__name__ + (": " + reply.error if isinstance(reply, ctl.RegisterRefused) else "")


for what, token in (("no token", ""), ("a guessed token", "0" * 32), ("its own token", mine)):
    print(f"impostor as sink with {what}: {register('sink', token)}", flush=True)
print(f"impostor as itself: {register('impostor', mine)}", flush=True)
print(f"impostor as itself again: {register('impostor', mine)}", flush=True)
"""


def test_only_the_spawned_process_registers_a_static_node_and_only_once(dora, tmp_path: Path) -> None:
    flow = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: source
            path: source.py
            outputs: [value]
          - id: sink
            path: sink.py
            inputs: {value: source/value}
            env: {API_KEY: s3cret}
          - id: impostor
            path: impostor.py
        """,
        files={"source.py": _SOURCE, "sink.py": _SINK, "impostor.py": _IMPOSTOR},
    )
    result = dora("run", str(flow)).wait(45)
    assert result.returncode == 0, result.output
    out = result.stdout
    # Refused whether the real sink registered first or not (the two race).
    why = r"node 'sink' (is started by the daemon: only that process|has registered already)"
    for what in ("no token", "a guessed token", "its own token"):
        assert re.search(f"impostor as sink with {what}: RegisterRefused: {why}", out), out
    assert "impostor as itself: NodeSetup" in out, out
    assert "impostor as itself again: RegisterRefused: node 'impostor' has registered already" in out, out
    assert "sink got [1, 2, 3, 4, 5]" in out, out
