"""The systemd units of deploy/: `systemd-analyze verify` (offline) and the settings we promise."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ._compose import REPO

UNITS = {"dora-zmq-daemon.service": "dora-zmq-daemon.service", "dora-zmq-node@.service": "dora-zmq-node@edge.service"}
INSTALL_PREFIX = "/opt/dora-zmq/bin/"  # where the units expect the venv (see the unit headers)


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign] - keys are case-sensitive
    parser.read_string((REPO / "deploy" / name).read_text())
    return parser


@pytest.mark.parametrize("name", sorted(UNITS))
def test_unit_passes_systemd_analyze_verify(name: str, tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    # verify checks that ExecStart exists: point the units at this venv instead of /opt.
    text = (REPO / "deploy" / name).read_text().replace(INSTALL_PREFIX, str(Path(sys.executable).parent) + "/")
    unit = tmp_path / UNITS[name]  # a template is verified through an instance
    unit.write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # verify exits 0 on unknown keys and bad values, but says so: no output is the pass.
    assert result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip(), (
        result.stdout + result.stderr
    )


def test_node_template_restarts_on_failure_from_an_env_file() -> None:
    service = _unit("dora-zmq-node@.service")["Service"]
    assert service["Restart"] == "on-failure"
    assert service["EnvironmentFile"] == "/etc/dora-zmq/node-%i.env"
    assert "${DORA_ZMQ_NODE_SCRIPT}" in service["ExecStart"]
    header = (REPO / "deploy" / "dora-zmq-node@.service").read_text()
    for var in ("DORA_ZMQ_COORDINATOR", "DORA_ZMQ_KEYS", "DORA_ZMQ_NODE_SCRIPT"):
        assert f"{var}=" in header, f"the env file example should show {var}"


def test_daemon_unit_stops_its_nodes_before_being_killed() -> None:
    service = _unit("dora-zmq-daemon.service")["Service"]
    assert service["ExecStart"].startswith(INSTALL_PREFIX + "dora-zmq daemon ")
    # SIGTERM reaches only the daemon, which STOPs its nodes (10 s grace) before systemd kills.
    assert service["KillMode"] == "mixed"
    assert int(service["TimeoutStopSec"]) > 10
