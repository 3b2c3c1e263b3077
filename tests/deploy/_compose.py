"""Reading docker-compose.yml the way the tests need it (services, commands, mounts)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
MULTI_YML = REPO / "dataflows" / "multi.yml"
CURVE_OVERRIDE = REPO / "deploy" / "compose.curve.yml"


def load_compose(*overrides: Path) -> dict[str, Any]:
    """The compose file with YAML merge keys (``<<: *dora``) resolved, as compose does.

    ``overrides`` are merged in as ``docker compose -f docker-compose.yml -f OVERRIDE`` does
    for the keys our overrides use: ``environment`` by key, ``volumes`` by target path.
    """
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    for path in overrides:
        for name, extra in yaml.safe_load(path.read_text())["services"].items():
            service = compose["services"][name]
            for key, value in extra.items():
                if key == "environment":
                    service[key] = {**service.get(key, {}), **value}
                elif key == "volumes":
                    kept = {v.split(":")[1]: v for v in service.get(key, [])}
                    service[key] = list({**kept, **{v.split(":")[1]: v for v in value}}.values())
                else:
                    service[key] = value
    return compose


def dora_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run our CLI (command ``["dora-zmq", ...]``), in file order."""
    return {name: s for name, s in compose["services"].items() if (s.get("command") or [None])[0] == "dora-zmq"}


def option(command: list[str], flag: str) -> str:
    """The value following ``flag`` in a command list."""
    assert flag in command, f"{flag} missing from {command}"
    return command[command.index(flag) + 1]


def mount(service: dict[str, Any], source: str) -> str:
    """The container path where the service mounts the host folder ``source`` (e.g. ./keys)."""
    for volume in service.get("volumes", []):
        src, target = volume.split(":")[:2]
        if src == source:
            return target
    raise AssertionError(f"no {source} mount in {service}")


def dataflow_mount(service: dict[str, Any]) -> tuple[str, str]:
    """(host folder, container folder) of the service's bind mount of the dataflows."""
    return "./dataflows", mount(service, "./dataflows")


def start_order(services: dict[str, dict[str, Any]]) -> list[str]:
    """Services in dependency order (``depends_on`` first), as ``docker compose up`` starts them."""
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {path + (name,)}"
        if name in order:
            return
        for dep in services[name].get("depends_on", {}):
            visit(dep, path + (name,))
        order.append(name)

    for name in services:
        visit(name, ())
    return order


def traces_through(lines: Iterable[str], services: set[str]) -> int:
    """How many trace ids have spans from every one of ``services``.

    ``lines`` are the OTLP receiver's (``span <service> <trace id> <span name>``); others are
    ignored.
    """
    seen: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        parts = line.split(" ", 3)
        if len(parts) == 4 and parts[0] == "span":
            seen[parts[2]].add(parts[1])
    return sum(1 for found in seen.values() if services <= found)
