"""A malformed endpoint in the peer list (``bogus://x``) costs that entry, not the stream.

A node may announce any endpoint for itself (``NodeBound`` from its own socket); the
coordinator passes the table to every node. Before: a subscriber's ``connect`` raised
``ZMQError`` in its receiver thread, which ended that node's event stream. Now it logs the
endpoint and goes on.

No sleeps: ``liar`` announces the bogus endpoint, then ping-pongs with ``echo``; ``echo`` flags
each pong once its own log shows the endpoint was ignored; ``liar`` stops after three flagged
pongs (or reports that ``echo`` went away).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dora_zmq.testing import write_dataflow

pytestmark = pytest.mark.timeout(60)

_LIAR = r"""
from dora_zmq import Node, _control as ctl

node = Node()
node._ctrl.send(ctl.NodeBound(node.dataflow_id, node.id, ctl.NodeEndpoint(node.machine, "bogus://x", "tcp://[nonsense")))
node.send_output("ping", b"0")
flagged = 0
for event in node:
    if event["type"] == "INPUT":
        flagged += bool(event["metadata"].get("ignored"))
        if flagged >= 3:
            print("ECHO KEPT GOING", flush=True)
            break
        node.send_output("ping", b"0")
    elif event["type"] in ("INPUT_CLOSED", "NODE_FAILED"):
        print(f"ECHO WENT AWAY ({event['type']})", flush=True)
        break
"""

_ECHO = r"""
import logging

from dora_zmq import Node

ignored = []


class Flag(logging.Handler):
    def emit(self, record):
        if "ignoring the endpoint of upstream node liar" in record.getMessage():
            ignored.append(record.getMessage())


logging.getLogger("dora_zmq.node").addHandler(Flag(logging.WARNING))
node = Node()
for event in node:
    if event["type"] == "INPUT":
        node.send_output("pong", b"1", {"ignored": bool(ignored)})
print(f"ECHO DONE {ignored[:1]}", flush=True)
"""


def test_a_bogus_endpoint_is_logged_and_ignored(dora, tmp_path: Path) -> None:
    yml = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: liar
            path: liar.py
            inputs: {pong: echo/pong}
            outputs: [ping]
          - id: echo
            path: echo.py
            inputs: {ping: liar/ping}
            outputs: [pong]
        """,
        files={"liar.py": _LIAR, "echo.py": _ECHO},
    )
    result = dora("run", str(yml)).wait(45)
    assert "liar ECHO KEPT GOING" in result.stdout, result.output
    assert "ignoring the endpoint of upstream node liar" in result.output
    assert "bogus://x" in result.output
    assert "receiver failed" not in result.output
    assert result.returncode == 0, result.output
