"""CLI defects of issue 17, each reproduced by a test that failed before its fix."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dora_zmq.testing import write_dataflow

REPO = Path(__file__).resolve().parents[2]
FLOWS = Path(__file__).resolve().parent / "flows"

THREE_NODES = """
nodes:
  - id: source
    path: node.py
    outputs: [x]
  - id: transform
    path: node.py
    inputs: {x: source/x}
    outputs: [y]
  - id: sink
    path: node.py
    inputs: {y: transform/y}
"""


@pytest.mark.timeout(30)
def test_logs_without_a_coordinator_fails_fast(dora) -> None:
    # It used to wait forever, printing nothing.
    result = dora("logs", "x", "y", "--coordinator", "tcp://127.0.0.1:1").wait(15)
    assert result.returncode == 1, result.output
    assert "no coordinator answered at tcp://127.0.0.1:1 (connection refused)" in result.stderr
    assert result.seconds < 8, result.seconds  # was a hang / a 10 s wait; Python start-up included


@pytest.mark.timeout(30)
def test_an_unresolvable_coordinator_fails_fast_with_the_reason(dora) -> None:
    # It used to wait 10 s, then suggest `dora-zmq up` as if no coordinator ran.
    result = dora("list", "--coordinator", "tcp://nosuchhost.invalid:53290").wait(20)
    assert result.returncode == 1, result.output
    assert "'nosuchhost.invalid' does not resolve" in result.stderr, result.output
    assert "dora-zmq up" not in result.output
    assert result.seconds < 8, result.seconds  # was a hang / a 10 s wait; Python start-up included


@pytest.mark.timeout(60)
def test_start_without_a_daemon_fails_and_says_why_everywhere(dora, local_cluster, tmp_path: Path) -> None:
    """`start` exits 1 with the reason; `list` and `logs` show it; node names stay apart."""
    flow = write_dataflow(tmp_path, THREE_NODES, files={"node.py": "from dora_zmq import Node\nNode()\n"})
    cluster = local_cluster(DORA_ZMQ_MACHINE_WAIT="1")
    address, env = cluster.address, cluster.env
    cluster.coordinator()

    started = dora("start", str(flow), "--name", "lonely", env=env).wait(30)
    assert started.returncode == 1, started.output  # was 0, with "started"
    assert "started dataflow" not in started.stdout
    assert "no daemon for the default machine (nodes: source, transform, sink)" in started.stderr
    assert f"`dora-zmq daemon --coordinator {address}`" in started.stderr
    assert "--machine-id" not in started.stderr.replace("no --machine-id", "")  # the default machine needs none

    listing = dora("list", env=env).wait(20)
    assert listing.returncode == 0, listing.output
    assert re.search(r"lonely\s.*failed", listing.stdout), listing.stdout
    assert "lonely: no daemon for the default machine" in listing.stdout  # the reason, not only "failed"

    logs = dora("logs", "lonely", "sink", env=env).wait(20)
    assert logs.returncode == 0, logs.output
    assert "sink no daemon for the default machine" in logs.stdout  # was empty

    as_json = json.loads(dora("list", "--format", "json", env=env).wait(20).stdout)
    (flow_json,) = as_json["dataflows"]
    assert sorted(f["node"] for f in flow_json["failures"]) == [
        "sink",
        "source",
        "transform",
    ]  # was "sink,source,transform"
    assert all(s == "failed" for s in flow_json["nodes"].values()), flow_json["nodes"]

    attached = dora("start", str(flow), "--attach", env=env).wait(30)
    assert attached.returncode == 1, attached.output
    for node in ("source", "transform", "sink"):
        assert f"node '{node}' failed: not started: no daemon for the default machine" in attached.stderr, (
            attached.stderr
        )
    assert "sink,source" not in attached.output and "source,transform" not in attached.output


def test_verbose_after_any_command() -> None:
    from dora_zmq.cli import _commands, cli  # noqa: F401 - importing _commands registers every command

    runner = CliRunner()
    for name in cli.list_commands(click.Context(cli)):
        for flag in ("-v", "-vv", "--verbose"):
            result = runner.invoke(cli, [name, flag, "--help"])
            assert result.exit_code == 0, f"{name} {flag}: {result.output}"


@pytest.mark.timeout(30)
def test_check_file_dash_v_logs_at_debug(dora) -> None:
    result = dora("check", str(REPO / "dataflows" / "quickstart.yml"), "-vv").wait(20)
    assert result.returncode == 0, result.output  # was "No such option '-v'"
    assert "DEBUG" in result.stderr


def test_otlp_receiver_help() -> None:
    result = subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", "dora_zmq.otlp_receiver", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "usage:" in result.stdout and "port" in result.stdout


def test_make_lint_has_a_recipe() -> None:
    result = subprocess.run(["make", "-n", "lint"], cwd=REPO, capture_output=True, text=True, timeout=30, check=False)  # noqa: S607
    assert result.returncode == 0, result.stderr
    assert "lint-imports" in result.stdout and "ruff check" in result.stdout, result.stdout


@pytest.mark.timeout(30)
def test_new_refuses_a_path_as_name(dora, tmp_path: Path) -> None:
    result = dora("new", "bad name/x", cwd=tmp_path).wait(20)
    assert result.returncode == 2, result.output
    assert "not a valid name" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no nested folders made
    ok = dora("new", "good-name_1", cwd=tmp_path).wait(20)
    assert ok.returncode == 0 and "dora-zmq run good-name_1/dataflow.yml" in ok.stdout, ok.output


@pytest.mark.timeout(30)
def test_empty_list_says_so(dora, local_cluster) -> None:
    cluster = local_cluster()
    cluster.coordinator()
    address = cluster.address
    result = dora("list", "--coordinator", address).wait(20)
    assert result.returncode == 0, result.output
    assert result.stdout.strip() == "no dataflows (start one with `dora-zmq start FILE`)"  # was an empty bordered table
    assert json.loads(dora("list", "--json", "--coordinator", address).wait(20).stdout) == {"dataflows": []}
