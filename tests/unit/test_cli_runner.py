"""The ``dora-zmq`` command line through click's CliRunner: the commands that need no running
coordinator (check, graph, keys, new, --help, --version) and how errors become exit codes.

Everything runs in this process except the registration test, which needs a fresh interpreter:
here ``dora_zmq.cli._commands`` may already have been imported by another test.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dora_zmq import __version__
from dora_zmq.cli import cli

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "dataflows" / "quickstart.yml"

#: Every command ``dora-zmq --help`` lists (``down`` is ``destroy``'s alias).
COMMANDS = {
    "build",
    "check",
    "coordinator",
    "daemon",
    "destroy",
    "down",
    "export-mcap",
    "graph",
    "keys",
    "list",
    "logs",
    "new",
    "record",
    "recording-info",
    "relay",
    "replay",
    "run",
    "start",
    "status",
    "stop",
    "top",
    "up",
}


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    """The CLI points the root logger at its stderr, which CliRunner replaces and closes afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_importing_cli_registers_every_command_without_main() -> None:
    """Every command is there (listed, and found by name), but ``run`` loads none of the lazy ones."""
    code = (
        "import json, sys, click; from dora_zmq.cli import cli\n"
        "names = cli.list_commands(click.Context(cli))\n"
        "lazy = sorted(m for m in sys.modules if m.startswith('dora_zmq.cli._') and m.rsplit('.', 1)[1]"
        " in ('_graph', '_logs', '_top', '_views'))\n"
        "found = [n for n in names if cli.get_command(click.Context(cli), n) is not None]\n"
        "print(json.dumps([names, found, lazy]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    names, found, lazy_loaded_first = json.loads(done.stdout)
    assert set(names) == COMMANDS and set(found) == COMMANDS
    assert lazy_loaded_first == []  # before any lookup


def test_help_lists_every_command_and_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        assert name in result.output
    version = runner.invoke(cli, ["--version"])
    assert version.exit_code == 0 and __version__ in version.output


def test_unknown_command_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.stderr


def test_check_a_valid_dataflow(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["check", str(QUICKSTART)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.stdout and "3 nodes" in result.stdout


def test_check_reports_problems_and_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("nodes:\n  - id: a/b\n    path: x.py\n")
    result = runner.invoke(cli, ["check", str(broken)])
    assert result.exit_code == 1
    assert "contains '/'" in result.stderr and result.stdout == ""
    bad_yaml = tmp_path / "bad.yml"
    bad_yaml.write_text("nodes: [\n")
    result = runner.invoke(cli, ["check", str(bad_yaml)])
    assert result.exit_code == 1 and "invalid YAML" in result.stderr


def test_check_of_a_missing_file_is_an_error_not_a_traceback(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["check", str(tmp_path / "absent.yml")])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


def test_graph_prints_mermaid_with_every_node(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["graph", str(QUICKSTART)])
    assert result.exit_code == 0, result.output
    assert result.stdout.lstrip().startswith("flowchart")
    for node in ("source", "transform", "sink"):
        assert node in result.stdout


def test_keys_writes_secret_files_0600(runner: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    result = runner.invoke(cli, ["keys", str(folder), "--daemon", "m1", "--operator", "ops"])
    assert result.exit_code == 0, result.output
    secrets = sorted(folder.rglob("*.key_secret"))
    assert secrets, result.output
    for path in secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert f"wrote {path}" in result.stdout.replace("\n", "")


def test_new_dataflow_then_check_it(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # `new` writes into the current directory
    result = runner.invoke(cli, ["new", "flow"])
    assert result.exit_code == 0, result.output
    assert "run it with: dora-zmq run flow/dataflow.yml" in result.stdout
    assert (tmp_path / "flow" / "dataflow.yml").is_file()
    checked = runner.invoke(cli, ["check", "flow/dataflow.yml"])
    assert checked.exit_code == 0, checked.output
    again = runner.invoke(cli, ["new", "flow"])
    assert again.exit_code == 1 and "pick another name" in again.stderr
    assert os.listdir(tmp_path) == ["flow"]


def test_new_rejects_other_languages_and_bad_names(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["new", "thing", "--lang", "rust"])
    assert result.exit_code == 1 and "node API is Python" in result.stderr
    result = runner.invoke(cli, ["new", "../escape"])
    assert result.exit_code == 2, result.output
    assert os.listdir(tmp_path) == []


def test_verbose_after_the_command_is_accepted(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["check", str(QUICKSTART), "-vv"])
    assert result.exit_code == 0, result.output
    assert logging.getLogger().level == logging.DEBUG


@pytest.mark.parametrize("command", ["run", "record", "replay", "start", "stop"])
def test_every_stopping_command_takes_the_same_grace_duration(runner: CliRunner, command: str) -> None:
    """One ``--grace-duration`` for all: record and replay took only plain seconds (``5s`` was refused)."""
    result = runner.invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    (grace,) = [p for p in cli.get_command(click.Context(cli), command).params if p.name == "grace"]
    assert grace.type.convert("1500ms", None, None) == pytest.approx(1.5)
    assert "5s, 500ms, 1m or seconds" in (getattr(grace, "help", None) or "")
