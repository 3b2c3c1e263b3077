"""deploy/swarm-stack.yml without Docker: what swarm needs that the compose file does not have.

test_docker_swarm.py deploys it for real; these checks run everywhere and say which rule broke.
"""

from __future__ import annotations

from typing import Any

import yaml

from dora_zmq.descriptor import load_dataflow

from ._compose import MULTI_YML, REPO, load_compose, option

STACK = REPO / "deploy" / "swarm-stack.yml"


def _services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(STACK.read_text())["services"]


def test_no_compose_only_keys() -> None:
    # `stack deploy` ignores build, restart and depends_on: relying on them would fail silently.
    for name, service in _services().items():
        assert not {"build", "restart", "depends_on", "container_name"} & set(service), name


def test_dnsrr_endpoints_everywhere() -> None:
    # Service VIPs need IPVS (missing on some kernels, and dora's random data ports are not
    # declared anyway): every service name resolves to its task's own address.
    for name, service in _services().items():
        assert service["deploy"]["endpoint_mode"] == "dnsrr", name


def test_one_daemon_service_per_machine_placed_by_its_node_label() -> None:
    services = _services()
    for machine in load_dataflow(MULTI_YML).machines():
        daemon = services[f"daemon-{machine}"]
        assert daemon["deploy"]["placement"]["constraints"] == [f"node.labels.dora-machine == {machine}"]
        assert option(daemon["command"], "--machine-id") == machine
        assert option(daemon["command"], "--advertise") == f"daemon-{machine}"


def test_curve_is_on_for_every_dora_service() -> None:
    for name, service in _services().items():
        if name == "jaeger":
            continue
        assert service["environment"]["DORA_ZMQ_KEYS"] == "/keys", name
        targets = {s["target"]: s for s in service["secrets"]}
        assert {
            "/keys/server.key",
            "/keys/server.key_secret",
            "/keys/clients/default.key_secret",
            "/keys/authorized/default.key",
        } <= set(targets)
        for secret in targets.values():
            assert secret["uid"] == "1000" and secret["mode"] == 0o400, (name, secret)


def test_start_is_a_one_shot_that_never_restarts() -> None:
    start = _services()["start"]
    assert start["deploy"]["restart_policy"] == {"condition": "none"}
    assert "dora-zmq start /app/dataflows/multi.yml" in start["command"][-1] and "--attach" in start["command"][-1]


def test_commands_match_the_compose_file() -> None:
    # Same services, same commands: the stack differs only in what swarm needs.
    compose = load_compose()["services"]
    for name, service in _services().items():
        if name in ("jaeger", "start"):
            continue
        assert service["command"] == compose[name]["command"], name
