"""``start --ship`` against a coordinator and a daemon on this machine (real processes).

Here the daemon sees the CLI's folder, so ``auto`` runs the nodes in place (as before
shipping existed) and ``always`` runs them from a shipped copy in the daemon's run folder,
which goes when the dataflow ends. The multi-host case, with the folder really absent, is in
``tests/multihost/test_ship.py``.
"""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import pytest

from dora_zmq.testing import free_tcp_address, write_dataflow

WHERE = """
    import os
    from dora_zmq import Node
    node = Node()
    open("made.txt", "w").write("written by the node")   # a relative file, in its cwd
    print("cwd", os.getcwd(), flush=True)
"""


def _cluster(local_cluster, tmp_path: Path, *daemon_args: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    cluster = local_cluster(DORA_ZMQ_CACHE_DIR=str(tmp_path / "cache"))
    cluster.coordinator()
    cluster.daemon(*daemon_args)
    return cluster.env


@pytest.mark.timeout(60)
def test_auto_runs_in_place_and_always_from_a_copy(dora, local_cluster, tmp_path: Path) -> None:
    env = _cluster(local_cluster, tmp_path)
    folder = tmp_path / "flow"
    yml = write_dataflow(folder, "nodes:\n  - id: where\n    path: where.py\n", files={"where.py": WHERE})

    auto = dora("start", str(yml), "--attach", env=env).wait(30)
    assert auto.returncode == 0, auto.output
    assert f"cwd {folder}" in auto.output, auto.output
    assert (folder / "made.txt").exists()
    assert (folder / "out").is_dir()  # log files next to the YAML, as with `run`

    (folder / "made.txt").unlink()
    always = dora("start", str(yml), "--ship", "always", "--attach", env=env).wait(30)
    assert always.returncode == 0, always.output
    assert "already on the coordinator, nothing sent" in always.output, always.output  # auto uploaded it
    copy = Path(re.search(r"cwd (\S+)", always.stdout).group(1))
    assert copy != folder and copy.name == "work", always.output
    assert not (folder / "made.txt").exists()  # the node wrote into its copy
    deadline = time.monotonic() + 10
    while copy.exists() and time.monotonic() < deadline:  # removed as the dataflow is forgotten
        time.sleep(0.05)
    assert not copy.exists(), f"{copy} left behind"


@pytest.mark.timeout(30)
def test_folder_over_the_limit_is_refused_naming_its_largest_files(dora, tmp_path: Path) -> None:
    yml = write_dataflow(tmp_path / "flow", "nodes:\n  - id: where\n    path: where.py\n", files={"where.py": WHERE})
    (tmp_path / "flow" / "weights.bin").write_bytes(b"\0" * 200_000)
    # No coordinator is needed to get this far: the folder is packed before anything is sent.
    result = dora("start", str(yml), "--ship-max-size", "100k", env={"DORA_ZMQ_COORDINATOR": free_tcp_address()}).wait(
        20
    )
    assert result.returncode == 1, result.output
    assert "over the limit of 100.0 KiB" in result.output and "weights.bin" in result.output, result.output
    assert ".dora-zmq-ignore" in result.output and "Traceback" not in result.output, result.output


@pytest.mark.timeout(60)
def test_a_daemon_that_refuses_shipped_folders_runs_in_place(dora, local_cluster, tmp_path: Path) -> None:
    env = _cluster(local_cluster, tmp_path, "--no-shipped")
    folder = tmp_path / "flow"
    yml = write_dataflow(folder, "nodes:\n  - id: where\n    path: where.py\n", files={"where.py": WHERE})
    result = dora("start", str(yml), "--ship", "always", "--attach", env=env).wait(30)
    assert result.returncode == 0, result.output
    assert f"cwd {folder}" in result.stdout, result.output  # the daemon's setting wins: same path


@pytest.mark.timeout(60)
def test_programs_the_bundle_leaves_out_are_named_at_start(dora, local_cluster, tmp_path: Path) -> None:
    env = _cluster(local_cluster, tmp_path)
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "outside.py").write_text(textwrap.dedent(WHERE))
    yml = write_dataflow(
        tmp_path / "flow",
        """
        nodes:
          - id: outside
            path: ../tools/outside.py
          - id: ignored
            path: gen/where.py
          - id: onpath
            path: true
        """,
        files={"gen/where.py": WHERE, ".dora-zmq-ignore": "gen/\n"},
    )
    result = dora("start", str(yml), "--attach", env=env).wait(30)
    assert result.returncode == 0, result.output  # this daemon sees the folder: it runs in place
    assert "node 'outside': ../tools/outside.py is outside the dataflow's folder" in result.output, result.output
    assert "node 'ignored': gen/where.py is left out by" in result.output, result.output
    assert "'onpath'" not in result.output, result.output
