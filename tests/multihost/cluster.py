"""A dora_zmq cluster on namespace hosts: a coordinator and one daemon per host.

The commands are exactly the ones docker-compose.yml runs (see deploy/README.md), with the
same environment variables, so what compose starts is what these tests exercise.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import psutil

from dora_zmq.testing import DataflowProcess, write_files

from .netns import Host, Network

__all__ = ["PORT", "Cluster", "write_files"]  # write_files: tests written against it import it from here

PORT = 53290


class Cluster:
    """Starts services on namespace hosts through the test's ``dora`` fixture (owned, reaped)."""

    def __init__(
        self, net: Network, dora: Callable[..., DataflowProcess], workdir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.net = net
        self.dora = dora
        self.workdir = workdir
        self.env = dict(env or {})
        self.coordinator_host: Host | None = None
        self.daemons: dict[str, DataflowProcess] = {}

    @property
    def address(self) -> str:
        assert self.coordinator_host is not None
        return f"tcp://{self.coordinator_host.ip}:{PORT}"

    def base_env(self, **extra: str) -> dict[str, str]:
        env = {"DORA_ZMQ_COORDINATOR": self.address, **self.env}
        env.update(extra)
        return env

    def start_coordinator(self, host: Host, ready_timeout: float = 20.0) -> DataflowProcess:
        self.coordinator_host = host
        p = self.dora(
            "coordinator",
            "--bind",
            f"tcp://{host.ip}:{PORT}",
            prefix=host.prefix,
            env=self.base_env(),
            cwd=self.workdir,
        )
        p.wait_for_line("coordinator listening", timeout=ready_timeout)
        return p

    def start_daemon(
        self, host: Host, machine: str | None = None, *extra: str, env: dict[str, str] | None = None
    ) -> DataflowProcess:
        machine = machine or host.name
        p = self.dora(
            "daemon",
            "--machine-id",
            machine,
            "--bind-data",
            host.ip,
            "--advertise",
            host.ip,
            *extra,
            prefix=host.prefix,
            env=self.base_env(**(env or {})),
            cwd=self.workdir,
        )
        self.daemons[machine] = p
        return p

    def cli(self, host: Host, *args: str, **kwargs: Any) -> DataflowProcess:
        return self.dora(
            *args, prefix=host.prefix, env=self.base_env(**kwargs.pop("env", {})), cwd=self.workdir, **kwargs
        )

    def node_processes(self) -> list[psutil.Process]:
        """The live processes the daemons started (nodes and what they started), zombies excluded."""
        found = []
        for daemon in self.daemons.values():
            try:
                children = psutil.Process(daemon.proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            for child in children:
                try:
                    if child.status() != psutil.STATUS_ZOMBIE:
                        found.append(child)
                except psutil.NoSuchProcess:
                    continue
        return found

    def wait_no_node_processes(self, timeout: float) -> list[str]:
        """Poll until the daemons have no child left; returns the command lines still alive at ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.node_processes()
            if not left or time.monotonic() > deadline:
                return [" ".join(p.cmdline()) for p in left if p.is_running()]
            time.sleep(0.2)  # polling the process table: there is no event for "a grandchild exited"
