"""docker-compose.yml without Docker: the compose-spec schema, then what must hold together.

No Docker engine runs on these machines, so the schema check (check-jsonschema's bundled
copy of the compose spec) stands in for `docker compose config`, and the structural checks
tie the file to dataflows/multi.yml and deploy/Dockerfile. The services' commands themselves
are run by test_compose_netns.py.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from dora_zmq.descriptor import load_dataflow
from dora_zmq.testing import run_cli

from ._compose import (
    COMPOSE_FILE,
    CURVE_OVERRIDE,
    MULTI_YML,
    REPO,
    dataflow_mount,
    dora_services,
    load_compose,
    mount,
    option,
)

OTLP = "http://jaeger:4318"


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    # A proxy that refuses everything: the check must not need the network.
    env = {"PATH": "/usr/bin:/bin", "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def _schema_bundled() -> str | None:
    if importlib.util.find_spec("check_jsonschema") is None:
        return "check-jsonschema is not installed (pip install -e '.[dev]')"
    schema = importlib.resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    if not schema.is_file():
        return "this check-jsonschema does not bundle the compose-spec schema (it would download it)"
    return None


# The test overrides use compose's !reset/!override tags, which a plain YAML reader rejects;
# Compose itself parses them in the docker tests.
@pytest.mark.parametrize(
    "path", [COMPOSE_FILE, CURVE_OVERRIDE, REPO / "deploy" / "swarm-stack.yml"], ids=lambda p: p.name
)
def test_compose_files_match_the_compose_spec(path: Path) -> None:
    why = _schema_bundled()
    if why:
        pytest.skip(why)
    ok = _check_jsonschema(path)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_schema_check_rejects_a_typo(tmp_path: Path) -> None:
    why = _schema_bundled()
    if why:
        pytest.skip(why)
    # The check has teeth: a misspelt key is rejected.
    typo = tmp_path / "docker-compose.yml"
    typo.write_text(COMPOSE_FILE.read_text().replace("stop_grace_period:", "stop_grace_periods:", 1))
    bad = _check_jsonschema(typo)
    assert bad.returncode != 0 and "stop_grace_periods" in bad.stdout, bad.stdout + bad.stderr


def test_commands_and_environment_are_plain_lists_and_mappings() -> None:
    # test_compose_netns.py runs them verbatim; a shell string would need a shell to split it.
    for name, service in load_compose()["services"].items():
        if "command" in service:
            assert isinstance(service["command"], list) and all(isinstance(a, str) for a in service["command"]), name
        assert isinstance(service.get("environment", {}), dict), name


def test_example_passes_dora_zmq_check() -> None:
    result = run_cli(["check", str(MULTI_YML)], timeout=30)
    assert result.returncode == 0 and "3 nodes, machines: cam, compute" in result.stdout, result.output


def test_one_daemon_service_per_machine_of_the_example() -> None:
    compose = load_compose()
    daemons = {name: s for name, s in dora_services(compose).items() if s["command"][1] == "daemon"}
    machines = {option(s["command"], "--machine-id"): name for name, s in daemons.items()}
    wanted = load_dataflow(MULTI_YML).machines()
    assert wanted and set(wanted) <= set(machines), f"multi.yml machines {wanted}, daemon services {machines}"
    coordinator = compose["services"]["coordinator"]["command"]
    port = urlparse(option(coordinator, "--bind")).port
    for name, service in daemons.items():
        cmd = service["command"]
        # Others reach a daemon's nodes at its service name, which compose's DNS resolves.
        assert option(cmd, "--advertise") == name
        assert option(cmd, "--bind-data") == "0.0.0.0"
        assert option(cmd, "--coordinator") == f"tcp://coordinator:{port}"


def test_start_service_runs_the_example_from_the_mount() -> None:
    compose = load_compose()
    start = compose["services"]["start"]
    source, target = dataflow_mount(start)
    yml = option(start["command"], "start")
    assert yml == f"{target}/multi.yml"
    assert (REPO / source / "multi.yml").resolve() == MULTI_YML.resolve()
    assert {"--attach", "--name"} <= set(start["command"])
    assert start["environment"]["DORA_ZMQ_COORDINATOR"] == "tcp://coordinator:53290"
    assert start.get("restart") == "no"
    # The daemons read node scripts at the path the YAML was started from: same mount.
    for name, service in dora_services(compose).items():
        if service["command"][1] == "daemon":
            assert dataflow_mount(service) == (source, target), name
    deps = start["depends_on"]
    assert deps["coordinator"]["condition"] == "service_healthy"
    assert {n for n, s in dora_services(compose).items() if s["command"][1] == "daemon"} <= set(deps)


def test_dora_services_build_the_deploy_image() -> None:
    services = dora_services(load_compose())
    assert {"coordinator", "start"} <= set(services)
    for name, service in services.items():
        assert service["build"] == {"context": ".", "dockerfile": "deploy/Dockerfile"}, name
        assert service["image"] == "dora-zmq:local", name
        assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        # tini forwards `docker compose down`'s SIGTERM; the grace outlasts the daemons' 10 s.
        assert service["init"] is True, name
        assert int(service["stop_grace_period"].rstrip("s")) > 10, name


def test_every_service_traces_to_jaeger() -> None:
    compose = load_compose()
    jaeger = compose["services"]["jaeger"]
    # Jaeger v2: v1 (jaegertracing/all-in-one) reached its end of life on 2025-12-31.
    repo, _, version = jaeger["image"].partition(":")
    assert repo == "jaegertracing/jaeger" and version.split(".")[0] == "2", jaeger["image"]
    published = {p.rsplit(":", 1)[-1] for p in jaeger["ports"]}
    assert {"4318", "16686"} <= published
    for name, service in dora_services(compose).items():
        assert service["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == OTLP, name
        # OTEL_SERVICE_NAME would be passed on to every node and hide the node ids.
        assert "OTEL_SERVICE_NAME" not in service["environment"], name


def test_healthchecks_use_status_and_start_waits_for_them() -> None:
    services = load_compose()["services"]
    coordinator = services["coordinator"]
    test = coordinator["healthcheck"]["test"]
    assert test[:3] == ["CMD", "dora-zmq", "status"]
    assert urlparse(option(test, "--coordinator")).port == urlparse(option(coordinator["command"], "--bind")).port
    daemons = {name: s for name, s in services.items() if s.get("command", [None, None])[1] == "daemon"}
    assert daemons
    for name, daemon in daemons.items():
        check = daemon["healthcheck"]["test"]
        assert check[:3] == ["CMD", "dora-zmq", "status"], name
        # healthy only once *this* machine's daemon is registered
        assert option(check, "--machine") == option(daemon["command"], "--machine-id"), name
        assert option(check, "--coordinator") == option(daemon["command"], "--coordinator"), name
        assert services["start"]["depends_on"][name]["condition"] == "service_healthy", name


def test_curve_override_gives_every_dora_service_the_keys() -> None:
    compose = load_compose(CURVE_OVERRIDE)
    for name, service in dora_services(compose).items():
        assert service["environment"]["DORA_ZMQ_KEYS"] == mount(service, "./keys"), name
        assert dataflow_mount(service)[1] == "/app/dataflows", f"{name}: the override must add, not replace"
        assert service["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == OTLP, name


def test_keys_for_the_compose_override_keep_secrets_private(tmp_path: Path) -> None:
    # deploy/README tells to chown the folder to the image's user; the secrets must then be
    # readable by that user only (a mounted key folder is shared by every container).
    keys = tmp_path / "keys"
    made = run_cli(["keys", str(keys), "--client", "cam"], timeout=30)
    assert made.returncode == 0, made.output
    secrets = sorted(keys.rglob("*.key_secret"))
    assert len(secrets) == 3, secrets  # the server's, default's and cam's
    modes = {p.relative_to(keys).as_posix(): oct(p.stat().st_mode & 0o777) for p in secrets}
    assert all(mode == "0o600" for mode in modes.values()), modes
