"""A `path: dynamic` node started by hand on the same machine joins a running dataflow."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest

FLOW = """
nodes:
  - id: source
    path: source.py
    inputs: {tick: dora/timer/millis/20}
    outputs: [n]
  - id: viewer
    path: dynamic
    inputs: {n: source/n}
"""

SOURCE = """
    import pyarrow as pa
    from dora_zmq import Node
    node = Node()
    i = 0
    for event in node:
        if event["type"] == "INPUT":
            node.send_output("n", pa.array([i]))
            i += 1
"""

VIEWER = """
    from dora_zmq import Node
    node = Node("viewer")  # no environment: finds the local coordinator, then its daemon
    got = 0
    for event in node:
        if event["type"] == "INPUT":
            got += 1
            if got == 5:
                break
    print("viewer got", got, "from dataflow", node.dataflow_id[:8], flush=True)
"""


def _default_port_free() -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 53290))
        except OSError:
            return False
    return True


def test_dynamic_node_joins_local_run(dora, flow_dir: Path) -> None:
    if not _default_port_free():  # another dataflow's coordinator: ours would not be the default
        pytest.skip("the default coordinator port 53290 is in use by another process")
    (flow_dir / "dataflow.yml").write_text(FLOW)
    (flow_dir / "source.py").write_text(textwrap.dedent(SOURCE))
    (flow_dir / "viewer.py").write_text(textwrap.dedent(VIEWER))
    run = dora("run", str(flow_dir / "dataflow.yml"), "--grace-duration", "2")
    # the embedded coordinator listens on the default local address when it is free
    viewer = dora(python_args=[str(flow_dir / "viewer.py")], cwd=flow_dir)
    out = viewer.wait(30)
    assert out.returncode == 0, out.output + run.output
    assert "viewer got 5" in out.stdout
    run.interrupt_group()
    result = run.wait(30)
    assert result.returncode == 0, result.output


def test_dynamic_node_without_dataflow_gets_clear_error(dora, flow_dir: Path) -> None:
    (flow_dir / "viewer.py").write_text(textwrap.dedent(VIEWER))
    env = {"DORA_ZMQ_COORDINATOR": "tcp://127.0.0.1:9", "DORA_ZMQ_REGISTER_TIMEOUT": "2"}
    out = dora(python_args=[str(flow_dir / "viewer.py")], cwd=flow_dir, env=env).wait(60)
    assert out.returncode != 0
    assert "no coordinator answered at tcp://127.0.0.1:9" in out.stderr
