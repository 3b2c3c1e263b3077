"""Roles under CURVE: an operator, a daemon and a node key each do their own job and nothing more.

One machine, real processes, every socket CURVE (``dora-zmq keys --operator --daemon --node``):
the operator starts a dataflow; a node key runs the edge node it is named after and gets its
data; the same node key cannot list, stop, register a daemon or run another node; a daemon
key cannot stop a dataflow. Before roles, any authorised key could do all of it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dora_zmq.testing import free_tcp_address, write_dataflow

pytestmark = pytest.mark.timeout(120)

_SOURCE = """
import pyarrow as pa
from dora_zmq import Node

node = Node()
i = 0
for event in node:
    if event["type"] == "INPUT":
        i += 1
        node.send_output("n", pa.array([i]))
        node.send_output("secret", pa.array([i]))  # read by no edge node
"""

_FINITE_SOURCE = """
import pyarrow as pa
from dora_zmq import Node

node = Node()
for i in range(20):
    node.send_output("n", pa.array([i]))
"""

# Runs as edge node 'edge' (which reads source/n), then also subscribes, with its own key, to
# source/secret on the source's data socket: the source must not let that subscription in.
_PROBER = """
import os, time, zmq, zmq.auth
from dora_zmq import Node

node = Node("edge")
for event in node:
    if event["type"] == "INPUT":
        break  # connected to the source
address = next(iter(node._sub.connected))
keys = os.environ["DORA_ZMQ_KEYS"]
ctx = zmq.Context()
sub = ctx.socket(zmq.SUB)
sub.curve_serverkey = zmq.auth.load_certificate(keys + "/data.key")[0]
sub.curve_publickey, sub.curve_secretkey = zmq.auth.load_certificate(os.environ["DORA_ZMQ_CLIENT_KEY"])
for topic in (b"source/secret\\0", b"source/n\\0"):
    sub.setsockopt(zmq.SUBSCRIBE, topic)
sub.connect(address)
got = {}
deadline = time.monotonic() + 20
while got.get(b"source/n\\0", 0) < 20 and time.monotonic() < deadline:
    if sub.poll(100):
        topic = sub.recv_multipart()[0]
        got[topic] = got.get(topic, 0) + 1
print("prober n", got.get(b"source/n\\0", 0), "secret", got.get(b"source/secret\\0", 0), flush=True)
sub.close(0)
node.close()
"""

_EDGE = """
import sys
from dora_zmq import Node

node = Node(sys.argv[1])
got = 0
for event in node:
    if event["type"] == "INPUT":
        got += 1
        if got == 5:
            break
print("edge got", got, flush=True)
"""


def test_each_key_set_does_its_own_job_and_nothing_more(dora, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    made = dora("keys", str(keys), "--operator", "laptop", "--daemon", "cam", "--node", "edge").wait(30)
    assert made.returncode == 0, made.output
    flow = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: source
            path: source.py
            inputs: {tick: dora/timer/millis/20}
            outputs: [n, secret]
          - id: edge
            path: dynamic
            inputs: {n: source/n}
          - id: other
            path: dynamic
            inputs: {n: source/n}
        """,
        files={"source.py": _SOURCE, "edge.py": _EDGE, "prober.py": _PROBER},
    )
    address = free_tcp_address()

    def as_key(role: str, name: str) -> dict[str, str]:
        return {
            "DORA_ZMQ_COORDINATOR": address,
            "DORA_ZMQ_KEYS": str(keys),
            "DORA_ZMQ_CLIENT_KEY": str(keys / "clients" / role / f"{name}.key_secret"),
        }

    operator, daemon, node = as_key("operator", "laptop"), as_key("daemon", "cam"), as_key("node", "edge")
    dora("coordinator", "--bind", address, env=daemon).wait_for_line("coordinator listening")
    dora("-v", "daemon", env=daemon, cwd=tmp_path).wait_for_line("registered with the coordinator")

    # A node key is no operator and no daemon.
    listed = dora("list", env=node).wait(30)
    assert listed.returncode == 1 and "ListDataflows needs an operator key" in listed.stderr, listed.output
    impostor = dora("daemon", "--machine-id", "cam", env=node, cwd=tmp_path).wait(30)
    assert impostor.returncode != 0 and "RegisterDaemon needs a daemon key" in impostor.stderr, impostor.output

    # A daemon key registers only the machine it is named after.
    elsewhere = dora("daemon", "--machine-id", "compute", env=daemon, cwd=tmp_path).wait(30)
    assert elsewhere.returncode != 0, elsewhere.output
    assert "a daemon key named 'cam' may only register machine id 'cam', not 'compute'" in elsewhere.stderr, (
        elsewhere.output
    )

    started = dora("start", str(flow), "--name", "roles", env=operator, cwd=tmp_path).wait(30)
    assert started.returncode == 0, started.output
    edge = dora(python_args=[str(tmp_path / "edge.py"), "edge"], env=node, cwd=tmp_path).wait(60)
    assert edge.returncode == 0 and "edge got 5" in edge.stdout, edge.output
    # Its key lets it read its own inputs, not the source's other outputs.
    probe = dora(python_args=[str(tmp_path / "prober.py")], env=node, cwd=tmp_path).wait(60)
    assert "prober n 20 secret 0" in probe.stdout, probe.output
    other = dora(python_args=[str(tmp_path / "edge.py"), "other"], env=node, cwd=tmp_path).wait(60)
    assert other.returncode != 0 and "a node key named 'edge' may only run node 'edge'" in other.stderr, other.output

    # A daemon key cannot stop a dataflow; the operator can.
    refused = dora("stop", "roles", env=daemon).wait(30)
    assert refused.returncode == 1 and "StopDataflow needs an operator key" in refused.stderr, refused.output
    assert dora("stop", "roles", env=operator).wait(30).returncode == 0
    assert dora("destroy", env=operator).wait(30).returncode == 0


def test_a_local_run_works_with_any_key_set_exported(dora, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    assert dora("keys", str(keys), "--operator", "laptop").wait(30).returncode == 0
    flow = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: source
            path: source.py
            outputs: [n]
          - id: edge
            path: edge.py
            args: edge
            inputs: {n: source/n}
        """,
        files={"source.py": _FINITE_SOURCE, "edge.py": _EDGE.replace("Node(sys.argv[1])", "Node()")},
    )
    env = {"DORA_ZMQ_KEYS": str(keys), "DORA_ZMQ_CLIENT_KEY": str(keys / "clients/operator/laptop.key_secret")}
    result = dora("run", str(flow), env=env).wait(60)
    assert "edge got 5" in result.stdout, result.output


def test_keys_are_private_on_disk(dora, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    assert dora("keys", str(keys), "--client", "old", "--node", "edge").wait(30).returncode == 0
    secrets = sorted(keys.rglob("*.key_secret"))
    assert {p.name for p in secrets} == {"server.key_secret", "data.key_secret", "old.key_secret", "edge.key_secret"}
    for path in secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for folder in [keys, *(p for p in keys.rglob("*") if p.is_dir())]:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert os.access(keys / "authorized" / "old.key", os.R_OK)
