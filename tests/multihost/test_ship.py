"""Shipping a dataflow's folder to a daemon whose machine does not have it (issue 11 §3).

Network namespaces share the file system, so the folder is hidden for real: the daemon runs
under ``unshare --mount`` with an empty tmpfs mounted over the folder's parent, while the
coordinator and the CLI (on another namespace host) see it. The nodes check for themselves
that the original path is not there.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import pytest

from dora_zmq._bundle import CHUNK_BYTES
from dora_zmq.testing import DataflowProcess, write_files

from .cluster import Cluster
from .netns import Host

pytestmark = pytest.mark.netns

SOURCE = """
    import hashlib, os
    import pyarrow as pa
    from dora_zmq import Node
    from helper import greeting          # a module of the shipped folder
    node = Node()
    blob = hashlib.sha256(open("data/blob.bin", "rb").read()).hexdigest()
    print(f"source: {greeting()} blob={blob} original-visible={os.path.exists(os.environ['ORIGINAL'])} "
          f"ignored-shipped={os.path.exists('secret.txt')} cwd-is-original={os.getcwd() == os.environ['ORIGINAL']}")
    sent = 0
    for event in node:
        if event["type"] == "INPUT":
            node.send_output("n", pa.array([sent]))
            sent += 1
            if sent == 5:
                break
"""

HELPER = """
    def greeting():
        return "hello from helper"
"""

OPERATOR = """
    from dora_zmq import DoraStatus

    class Operator:
        def __init__(self):
            self.count = 0

        def on_event(self, dora_event, send_output):
            if dora_event["type"] == "INPUT":
                self.count += 1
                if self.count == 5:
                    print("operator: got 5 values")
            return DoraStatus.CONTINUE
"""

FLOW = """
nodes:
  - id: source
    path: source.py
    deploy: {machine: h2}
    inputs: {tick: dora/timer/millis/20}
    outputs: [n]
    env: {ORIGINAL: "%s"}
  - id: count
    operator:
      python: ops/count.py
      inputs: {n: source/n}
    deploy: {machine: h2}
"""


def _flow(tmp_path: Path) -> tuple[Path, Path, str]:
    """The dataflow folder (under a parent the daemon will not see) and its blob's sha256."""
    hidden = tmp_path / "hidden"
    folder = hidden / "flow"
    (folder / "ops").mkdir(parents=True)
    (folder / "data").mkdir()
    write_files(
        folder, {"source.py": SOURCE, "helper.py": HELPER, "ops/count.py": OPERATOR, "dataflow.yml": FLOW % folder}
    )
    blob = os.urandom(CHUNK_BYTES * 2 + 12345)  # random: it packs to about as much, in 3 chunks
    (folder / "data" / "blob.bin").write_bytes(blob)
    (folder / "secret.txt").write_text("not for the cluster")
    (folder / ".dora-zmq-ignore").write_text("secret.txt\n")
    return hidden, folder, hashlib.sha256(blob).hexdigest()


def _daemon_without(cluster: Cluster, host: Host, hidden: Path, cache: Path, *extra: str) -> DataflowProcess:
    """A daemon on ``host`` in its own mount namespace, where ``hidden`` is an empty tmpfs."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux)")
    hide = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        'mount -t tmpfs tmpfs "$0" && exec "$@"',
        str(hidden),
    ]
    daemon = cluster.dora(
        "-v",
        "daemon",
        "--machine-id",
        host.name,
        "--bind-data",
        host.ip,
        "--advertise",
        host.ip,
        "--cache-dir",
        str(cache),
        *extra,
        prefix=[*host.prefix, *hide],
        env=cluster.base_env(),
        cwd=cluster.workdir,
    )
    cluster.daemons[host.name] = daemon
    daemon.wait_for_line("registered with the coordinator")
    return daemon


def _setup(network, dora, tmp_path: Path, *daemon_args: str) -> tuple[Cluster, Host, DataflowProcess, Path, str]:
    h1, h2 = network.add_host("h1"), network.add_host("h2")
    hidden, folder, blob_sha = _flow(tmp_path)
    cluster = Cluster(network, dora, tmp_path, env={"DORA_ZMQ_CACHE_DIR": str(tmp_path / "cache-coordinator")})
    cluster.start_coordinator(h1)
    daemon = _daemon_without(cluster, h2, hidden, tmp_path / "cache-h2", *daemon_args)
    return cluster, h1, daemon, folder, blob_sha


@pytest.mark.timeout(120)
def test_folder_missing_on_the_daemon_runs_by_shipping_once(network, dora, tmp_path: Path) -> None:
    cluster, h1, daemon, folder, blob_sha = _setup(network, dora, tmp_path)
    yaml = str(folder / "dataflow.yml")

    first = cluster.cli(h1, "start", yaml, "--attach").wait(60)
    assert first.returncode == 0, first.output + "\n" + daemon.output
    out = first.output
    assert f"blob={blob_sha}" in out, out  # the 3-chunk file arrived whole
    assert "hello from helper" in out and "original-visible=False" in out, out
    assert "ignored-shipped=False" in out and "cwd-is-original=False" in out, out
    assert "operator: got 5 values" in out, out  # operators' python: resolves in the copy
    sent = int(re.search(r"sent (\d+) bytes", out).group(1))
    assert sent > 2 * CHUNK_BYTES, out
    assert len(re.findall(r"fetching bundle", daemon.output)) == 1, daemon.output

    second = cluster.cli(h1, "start", yaml, "--attach").wait(60)
    assert second.returncode == 0, second.output + "\n" + daemon.output
    assert "already on the coordinator, nothing sent" in second.output, second.output
    assert f"blob={blob_sha}" in second.output, second.output
    daemon.wait_for_line(r"found in the cache, nothing to fetch")
    assert len(re.findall(r"fetching bundle", daemon.output)) == 1, daemon.output  # not fetched again


@pytest.mark.timeout(90)
def test_ship_never_fails_clearly_when_the_folder_is_missing(network, dora, tmp_path: Path) -> None:
    cluster, h1, daemon, folder, _ = _setup(network, dora, tmp_path)
    result = cluster.cli(h1, "start", str(folder / "dataflow.yml"), "--ship", "never", "--attach").wait(60)
    assert result.returncode == 1, result.output
    assert f"the dataflow's folder {folder} is not on machine 'h2'" in result.output, result.output
    assert "--ship never" in result.output and "--ship auto" in result.output, result.output
    assert "bundle" not in daemon.output.lower(), daemon.output  # nothing was shipped


@pytest.mark.timeout(90)
def test_a_daemon_that_refuses_shipped_folders_says_so(network, dora, tmp_path: Path) -> None:
    cluster, h1, daemon, folder, _ = _setup(network, dora, tmp_path, "--no-shipped")
    result = cluster.cli(h1, "start", str(folder / "dataflow.yml"), "--attach").wait(60)
    assert result.returncode == 1, result.output
    assert (
        f"the dataflow's folder {folder} is not on machine 'h2', and its daemon runs only folders" in result.output
    ), result.output
    assert "--no-shipped" in result.output, result.output
    assert "fetching bundle" not in daemon.output, daemon.output
