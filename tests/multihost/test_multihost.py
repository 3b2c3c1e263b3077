"""Dataflows across several hosts (network namespaces on a bridge; skipped without root)."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from dora_zmq.testing import write_files

from .cluster import Cluster

pytestmark = pytest.mark.netns

COUNTER = """
    import os, time
    import pyarrow as pa
    from dora_zmq import Node
    node = Node()
    limit = int(os.environ.get("LIMIT", "50"))
    sent = 0
    for event in node:
        if event["type"] == "INPUT" and event["id"] == "tick":
            node.send_output("n", pa.array([sent], type=pa.int64()))
            sent += 1
            if sent == limit:
                break
    print("counter sent", sent)
"""

FORWARD = """
    from dora_zmq import Node
    node = Node()
    for event in node:
        if event["type"] == "INPUT":
            node.send_output("n", event["value"], event["metadata"])
"""

COLLECT = """
    from dora_zmq import Node
    node = Node()
    got = {}
    for event in node:
        if event["type"] == "INPUT":
            got.setdefault(event["id"], []).extend(event["value"].to_pylist())
    for key, values in sorted(got.items()):
        in_order = values == sorted(values)
        print(f"collect {key}: {len(values)} values, in order {in_order}, lost {node.lost.get(key, 0)}")
"""

SPANNING = """
nodes:
  - id: counter
    path: counter.py
    deploy: {machine: h1}
    inputs: {tick: dora/timer/millis/10}
    outputs: [n]
    env: {LIMIT: 50}
  - id: forward
    path: forward.py
    deploy: {machine: h2}
    inputs: {n: counter/n}
    outputs: [n]
  - id: collect
    path: collect.py
    deploy: {machine: h3}
    inputs:
      direct: {source: counter/n, queue_size: 1000}
      forwarded: {source: forward/n, queue_size: 1000}
"""


@pytest.mark.timeout(90)
def test_dataflow_spanning_three_hosts(network, dora, tmp_path: Path) -> None:
    hosts = [network.add_host(f"h{i}") for i in (1, 2, 3)]
    write_files(
        tmp_path, {"counter.py": COUNTER, "forward.py": FORWARD, "collect.py": COLLECT, "dataflow.yml": SPANNING}
    )
    cluster = Cluster(network, dora, tmp_path)
    cluster.start_coordinator(hosts[0])
    for h in hosts:
        cluster.start_daemon(h)
    run = cluster.cli(hosts[0], "start", "dataflow.yml", "--name", "span", "--attach")
    result = run.wait(60)
    assert result.returncode == 0, result.output + "\n".join(d.output for d in cluster.daemons.values())
    assert "collect direct: 50 values, in order True, lost 0" in result.stdout
    assert "collect forwarded: 50 values, in order True, lost 0" in result.stdout
    listing = cluster.cli(hosts[1], "list").wait(20)
    assert re.search(r"span .* finished", listing.stdout), listing.output


KILL_FLOW = """
nodes:
  - id: counter
    path: counter.py
    deploy: {machine: h1}
    inputs: {tick: dora/timer/millis/20}
    outputs: [n]
    env: {LIMIT: 100000}
  - id: collect
    path: collect.py
    deploy: {machine: h2}
    inputs: {direct: counter/n}
"""


@pytest.mark.timeout(90)
def test_daemon_killed_is_reported_and_dataflow_ends(network, dora, tmp_path: Path) -> None:
    h1, h2 = network.add_host("h1"), network.add_host("h2")
    write_files(tmp_path, {"counter.py": COUNTER, "collect.py": COLLECT, "dataflow.yml": KILL_FLOW})
    cluster = Cluster(network, dora, tmp_path)
    cluster.start_coordinator(h1)
    cluster.start_daemon(h1)
    victim = cluster.start_daemon(h2)
    run = cluster.cli(h1, "start", "dataflow.yml", "--attach")
    run.wait_for_line(r"started dataflow")
    # wait until data flows into h2 (the collect node is running there)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listing = cluster.cli(h1, "list").wait(20)
        if re.search(r"2 running", listing.stdout):
            break
    killed_at = time.monotonic()
    victim.proc.send_signal(signal.SIGKILL)
    line = run.wait_for_line(r"daemon on machine 'h2' lost", timeout=20)
    detected = time.monotonic() - killed_at
    result = run.wait(40)
    assert result.returncode == 1, result.output
    assert "node 'collect' failed" in result.stderr, result.output
    assert detected < 10, f"detection took {detected:.1f} s"
    print(f"daemon loss detected after {detected:.2f} s: {line}")


PROGRESS_COLLECT = """
    from dora_zmq import Node
    node = Node()
    n = 0
    for event in node:
        if event["type"] == "INPUT":
            n += 1
            if n % 50 == 0:
                print("collect progress", n, flush=True)
    print(f"collect total {n} lost {sum(node.lost.values())}")
"""

CUT_FLOW = """
nodes:
  - id: counter
    path: counter.py
    deploy: {machine: h1}
    inputs: {tick: dora/timer/millis/10}
    outputs: [n]
    env: {LIMIT: 800}
  - id: collect
    path: collect.py
    deploy: {machine: h2}
    inputs: {direct: {source: counter/n, queue_size: 10000}}
"""


@pytest.mark.timeout(90)
def test_link_cut_and_restored_resumes_with_losses_counted(network, dora, tmp_path: Path) -> None:
    h1, h2 = network.add_host("h1"), network.add_host("h2")
    write_files(tmp_path, {"counter.py": COUNTER, "collect.py": PROGRESS_COLLECT, "dataflow.yml": CUT_FLOW})
    # the machine must outlive the cut: only the data link's heartbeat (3 s) should notice it
    cluster = Cluster(network, dora, tmp_path, env={"DORA_ZMQ_DAEMON_TIMEOUT": "30"})
    cluster.start_coordinator(h1)
    cluster.start_daemon(h1)
    cluster.start_daemon(h2)
    run = cluster.cli(h1, "start", "dataflow.yml", "--attach")
    run.wait_for_line(r"collect progress 50")
    network.cut(h2)
    cut_at = time.monotonic()
    time.sleep(4.5)  # the outage itself (what is measured), not a synchronisation
    network.restore(h2)
    line = run.wait_for_line(r"collect total", timeout=40)
    result = run.wait(30)
    assert result.returncode == 0, result.output
    total, lost = map(int, re.search(r"collect total (\d+) lost (\d+)", line).groups())
    assert total + lost == 800, line
    assert total > 100, line
    if lost:
        assert f"collect/direct: {lost}" in result.stderr, result.output
    print(f"link down {time.monotonic() - cut_at:.1f} s; received {total}, lost {lost}")


ROGUE = """
    import sys, time, zmq, zmq.auth
    endpoint, keys, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    if mode != "plain":
        server_public, _ = zmq.auth.load_certificate(keys + "/data.key")  # the data plane's server key
        own = "/rogue/rogue.key_secret" if mode == "wrong-key" else "/clients/default.key_secret"
        public, secret = zmq.auth.load_certificate(keys + own)
        sub.curve_serverkey, sub.curve_publickey, sub.curve_secretkey = server_public, public, secret
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(endpoint)
    print("rogue listening", mode, flush=True)
    got = 0
    deadline = time.monotonic() + float(sys.argv[4])
    while time.monotonic() < deadline:
        if sub.poll(100):
            sub.recv_multipart()
            got += 1
    print("rogue received", got, flush=True)
    sub.close(0)
    ctx.term()
"""

ROGUE_CONTROL = """
    import sys, zmq, zmq.auth, json
    endpoint, keys = sys.argv[1], sys.argv[2]
    ctx = zmq.Context()
    d = ctx.socket(zmq.DEALER)
    server_public, _ = zmq.auth.load_certificate(keys + "/server.key")
    public, secret = zmq.auth.load_certificate(keys + "/rogue/rogue.key_secret")
    d.curve_serverkey, d.curve_publickey, d.curve_secretkey = server_public, public, secret
    d.connect(endpoint)
    d.send(json.dumps({"t": "Destroy"}).encode())
    print("control answer", bool(d.poll(2000)), flush=True)
    d.close(0)
    ctx.term()
"""


def _listening_ports(pid: int) -> list[int]:
    """Listening tcp ports of a process, read in its own network namespace.

    (psutil reads /proc/net/tcp, i.e. the caller's namespace, so it cannot see these.)
    """
    import os

    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    with open(f"/proc/{pid}/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                ports.append(int(fields[1].split(":")[1], 16))
    return ports


def _listening_port(tag: str, script: str) -> int:
    from dora_zmq.testing import leaked_processes

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for proc in leaked_processes(tag):
            try:
                if any(script in part for part in proc.cmdline()) and (ports := _listening_ports(proc.pid)):
                    return ports[0]
            except OSError:
                continue
    raise AssertionError(f"no listening tcp port for {script}")


@pytest.mark.timeout(90)
def test_curve_peer_without_key_gets_nothing(network, dora, tmp_path: Path) -> None:
    import zmq.auth

    h1, h2, h3 = (network.add_host(n) for n in ("h1", "h2", "h3"))
    keys = tmp_path / "keys"
    assert dora("keys", str(keys)).wait(20).returncode == 0
    (keys / "rogue").mkdir()
    zmq.auth.create_certificates(keys / "rogue", "rogue")  # a key pair nobody authorised
    write_files(
        tmp_path,
        {
            "counter.py": COUNTER,
            "collect.py": PROGRESS_COLLECT,
            "rogue.py": ROGUE,
            "rogue_control.py": ROGUE_CONTROL,
            "dataflow.yml": CUT_FLOW.replace("LIMIT: 800", "LIMIT: 600"),
        },
    )
    cluster = Cluster(network, dora, tmp_path, env={"DORA_ZMQ_KEYS": str(keys)})
    cluster.start_coordinator(h1)
    cluster.start_daemon(h1)
    cluster.start_daemon(h2)
    run = cluster.cli(h1, "start", "dataflow.yml", "--attach")
    port = _listening_port(cluster.daemons["h1"].tag, "counter.py")
    rogues = [
        dora(
            python_args=["rogue.py", f"tcp://{h1.ip}:{port}", str(keys), mode, "3"],
            prefix=h3.prefix,
            cwd=tmp_path,
            tag=run.tag,
        )
        for mode in ("plain", "wrong-key", "authorised")
    ]
    control = dora(
        python_args=["rogue_control.py", cluster.address, str(keys)], prefix=h3.prefix, cwd=tmp_path, tag=run.tag
    )
    outputs = [r.wait(30).stdout for r in rogues]
    assert "rogue received 0" in outputs[0], outputs
    assert "rogue received 0" in outputs[1], outputs
    # the same script with the authorised key does receive: the port and the method were right
    assert "rogue received 0" not in outputs[2] and "rogue received" in outputs[2], outputs
    assert "control answer False" in control.wait(30).stdout
    result = run.wait(60)
    assert result.returncode == 0, result.output
    assert "collect total 600 lost 0" in result.stdout


EDGE = """
    import os
    from dora_zmq import Node
    node = Node("edge")
    seen = 0
    for event in node:
        if event["type"] == "INPUT":
            seen += 1
            node.send_output("ack", event["value"], event["metadata"])
            if seen == 10:
                break
    listening = [l for l in open(f"/proc/{os.getpid()}/net/tcp").readlines()[1:] if l.split()[3] == "0A"]
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own descriptor, gone already
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    mine = [l for l in listening if l.split()[9] in inodes]
    print("edge handled", seen, "machine", node.machine, "listening sockets", len(mine), flush=True)
"""

ACKS = """
    from dora_zmq import Node
    node = Node()
    n = 0
    for event in node:
        if event["type"] == "INPUT":
            n += 1
            print("acks", n, flush=True)
        else:
            print("acks event", event["type"], event["id"], flush=True)
"""

EDGE_FLOW = """
nodes:
  - id: counter
    path: counter.py
    deploy: {machine: h1}
    inputs: {tick: dora/timer/millis/20}
    outputs: [n]
    env: {LIMIT: 1000000}
  - id: edge
    path: dynamic
    deploy: {machine: h1}
    inputs: {n: counter/n}
    outputs: [ack]
  - id: acks
    path: acks.py
    deploy: {machine: h1}
    inputs: {ack: edge/ack}
"""


def _edge_setup(network, dora, tmp_path: Path) -> tuple[Any, Any, "Cluster"]:
    """Hosts h1 (coordinator + daemon) and edge (nothing started), and the edge graph's files.

    The edge and the NAT-relay tests share the graph: only how the edge node publishes differs.
    """
    h1, edge_host = network.add_host("h1"), network.add_host("edge")
    write_files(tmp_path, {"counter.py": COUNTER, "edge.py": EDGE, "acks.py": ACKS, "dataflow.yml": EDGE_FLOW})
    cluster = Cluster(network, dora, tmp_path)
    cluster.start_coordinator(h1)
    cluster.start_daemon(h1)
    return h1, edge_host, cluster


@pytest.mark.timeout(90)
def test_dynamic_edge_node_joins_leaves_and_joins_again(network, dora, tmp_path: Path) -> None:
    h1, edge_host, cluster = _edge_setup(network, dora, tmp_path)
    run = cluster.cli(h1, "start", "dataflow.yml", "--name", "edgy", "--attach")
    run.wait_for_line("started dataflow")
    for attempt, expected_acks in ((1, 10), (2, 20)):
        # only the coordinator's address is known on the edge device
        edge = dora(python_args=["edge.py"], prefix=edge_host.prefix, cwd=tmp_path, env=cluster.base_env())
        out = edge.wait(40)
        assert out.returncode == 0, out.output
        assert "edge handled 10 machine h1/edge listening sockets 1" in out.stdout  # its own tcp publisher
        run.wait_for_line(rf"acks {expected_acks}\b", timeout=20)
    assert "acks event INPUT_CLOSED" not in run.output  # leaving did not end the edge's outputs
    assert cluster.cli(h1, "stop", "edgy", "--grace-duration", "2").wait(20).returncode == 0
    result = run.wait(40)
    assert result.returncode == 0, result.output


BIG_SRC = """
    import numpy as np, pyarrow as pa
    from dora_zmq import Node
    node = Node()
    for i in range(20):
        value = pa.array(np.full(2_000_000, i, dtype=np.uint8))
        node.send_output("mixed", value)       # one subscriber here, one on another host
        node.send_output("local", value)       # subscribers on this host only
    pool = node._shm._pool
    print("big pool writes", pool.stats().writes if pool else 0, flush=True)
"""

BIG_DST = """
    from dora_zmq import Node
    node = Node()
    ok = {}
    for event in node:
        if event["type"] == "INPUT":
            arr = event["value"].to_numpy()
            assert len(arr) == 2_000_000 and (arr == ok.get(event["id"], 0)).all()
            ok[event["id"]] = ok.get(event["id"], 0) + 1
    print(node.id, "intact", sorted(ok.items()), flush=True)
"""

BIG_FLOW = """
nodes:
  - id: big
    path: big.py
    deploy: {machine: h1}
    outputs: [mixed, local]
  - id: near
    path: bigdst.py
    deploy: {machine: h1}
    inputs:
      mixed: {source: big/mixed, queue_size: 100}
      local: {source: big/local, queue_size: 100}
  - id: far
    path: bigdst.py
    deploy: {machine: h2}
    inputs:
      mixed: {source: big/mixed, queue_size: 100}
"""


@pytest.mark.timeout(90)
def test_shared_memory_only_between_nodes_of_one_host(network, dora, tmp_path: Path) -> None:
    h1, h2 = network.add_host("h1"), network.add_host("h2")
    write_files(tmp_path, {"big.py": BIG_SRC, "bigdst.py": BIG_DST, "dataflow.yml": BIG_FLOW})
    cluster = Cluster(network, dora, tmp_path)
    cluster.start_coordinator(h1)
    cluster.start_daemon(h1)
    cluster.start_daemon(h2)
    result = cluster.cli(h1, "start", "dataflow.yml", "--attach").wait(60)
    assert result.returncode == 0, result.output
    assert "near intact [('local', 20), ('mixed', 20)]" in result.stdout
    assert "far intact [('mixed', 20)]" in result.stdout
    # only the local-only output went through shared memory; the mixed one fell back to tcp/ipc
    assert "big pool writes 20" in result.stdout


@pytest.mark.timeout(90)
def test_node_behind_nat_publishes_through_the_relay(network, dora, tmp_path: Path) -> None:
    h1, edge_host, cluster = _edge_setup(network, dora, tmp_path)
    relay = cluster.cli(h1, "relay", "--publishers", f"tcp://{h1.ip}:53291", "--subscribers", f"tcp://{h1.ip}:53292")
    relay.wait_for_line("relay: publishers connect")
    run = cluster.cli(h1, "start", "dataflow.yml", "--name", "nat", "--attach")
    run.wait_for_line("started dataflow")
    env = cluster.base_env(DORA_ZMQ_RELAY=f"tcp://{h1.ip}:53291,tcp://{h1.ip}:53292")
    out = dora(python_args=["edge.py"], prefix=edge_host.prefix, cwd=tmp_path, env=env).wait(40)
    assert out.returncode == 0, out.output + run.output
    # it accepted no connection at all: everything went out through the relay
    assert "edge handled 10 machine h1/edge listening sockets 0" in out.stdout
    run.wait_for_line(r"acks 10\b", timeout=20)
    assert cluster.cli(h1, "stop", "nat", "--grace-duration", "2").wait(20).returncode == 0
    assert run.wait(40).returncode == 0


# Paced messages of every size the benchmarks use, small first, over tcp between two hosts.
# Each socket once lowered its ZeroMQ high-water mark when a larger message came; libzmq then
# stalls a connection with more messages unacknowledged than the new mark, for good: from the
# first 4 MB message on nothing arrived (benchmarks/run.py --variant tcp-netns failed so).
SIZES_SRC = """
    import numpy as np, pyarrow as pa
    from dora_zmq import Node
    node = Node()
    sizes = [0, 8, 64, 512, 2048, 4096, 16384, 40960, 409600, 4096000, 16777216]
    i = 0
    for size in sizes:
        for _ in range(30):
            node.send_output("n", pa.array(np.full(size, i % 251, dtype=np.uint8)))
            i += 1
            node.next(timeout=0.005)  # paced (the timer ticks are ignored)
    print("sizes sent", i)
"""

SIZES_SINK = """
    from dora_zmq import Node
    node = Node()
    got = []
    for event in node:
        if event["type"] == "INPUT":
            value = event["value"].to_numpy()
            got.append((len(value), int(value[0]) if len(value) else None))
    print("sizes got", len(got), "lost", node.lost.get("n", 0), "dropped", node.dropped.get("n", 0))
    print("sizes", sorted({size for size, _ in got}))
"""

SIZES_FLOW = """
nodes:
  - id: src
    path: src.py
    deploy: {machine: h1}
    inputs: {tick: dora/timer/secs/10}
    outputs: [n]
  - id: sink
    path: sink.py
    deploy: {machine: h2}
    inputs:
      n: {source: src/n, queue_size: 1000}
"""


@pytest.mark.timeout(90)
def test_paced_messages_of_every_size_cross_hosts(network, dora, tmp_path: Path) -> None:
    h1, h2 = network.add_host("h1"), network.add_host("h2")
    write_files(tmp_path, {"src.py": SIZES_SRC, "sink.py": SIZES_SINK, "dataflow.yml": SIZES_FLOW})
    cluster = Cluster(network, dora, tmp_path)
    cluster.start_coordinator(h1)
    cluster.start_daemon(h1)
    cluster.start_daemon(h2)
    result = cluster.cli(h1, "start", "dataflow.yml", "--attach").wait(75)
    assert result.returncode == 0, result.output + "\n".join(d.output for d in cluster.daemons.values())
    assert "sizes sent 330" in result.stdout, result.output
    assert "sizes got 330 lost 0 dropped 0" in result.stdout, result.output
    assert "sizes [0, 8, 64, 512, 2048, 4096, 16384, 40960, 409600, 4096000, 16777216]" in result.stdout
