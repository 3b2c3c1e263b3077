"""What can be measured: dora_zmq through its CLI, the raw ZeroMQ floor, and dora-rs.

A :class:`Target` knows how to run one sender/receiver job as processes; :func:`run_target`
runs it in a fresh temporary directory, reaps everything and returns the receiver's result.
With ``hosts`` (two network namespaces, see ``netns.py``) the sender runs on the first and
the receiver on the second: dora_zmq as a coordinator + one daemon per host, raw ZeroMQ over tcp.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq_baseline
from common import ALTERNATE_ENV, API_ENV, Job, Params
from flowgen import write_dataflow
from netns import Host
from procs import Service, run_group

log = logging.getLogger(__name__)

DORA_RS_VERSION = "1.1.0"
COORDINATOR_PORT = 53290  # inside the sender's namespace


class TargetFailed(Exception):
    """A run produced no result; the message holds the logs' tails."""


@dataclass(frozen=True)
class Target:
    """One implementation under test.

    ``kind`` is ``"zmq"`` (raw baseline processes), ``"dataflow"`` (a dataflow run by
    ``cli`` + the YAML path, with node scripts using ``api``) or ``"cluster"`` (dora_zmq's
    coordinator and daemons on ``hosts``, the dataflow started with ``dora-zmq start --attach``).
    """

    name: str
    kind: str
    cli: tuple[str, ...] = ()
    api: str = "dora_zmq"
    env: dict[str, str] = field(default_factory=dict)
    path_prefix: str = ""  # prepended to PATH (dora-rs finds `python` there)
    hosts: tuple[Host, ...] = ()  # (sender's, receiver's): a run across two namespace hosts

    def commands(self, workdir: Path, hops: int) -> tuple[list[list[str]], list[str], list[Service]]:
        """Command lines, their log names, and the services they need, for one run."""
        if self.hosts and hops != 1:
            raise ValueError("a run across hosts is one link (sender -> receiver)")
        if self.kind == "zmq":
            if self.hosts:
                sender, receiver = self.hosts
                cmds = zmq_baseline.commands(sys.executable, workdir, hops, (sender.ip, sender.prefix), receiver.prefix)
                return cmds, ["receiver", "sender"], []
            cmds = zmq_baseline.commands(sys.executable, workdir, hops)
            names = ["receiver"] + [f"relay{i}" for i in range(1, hops)] + ["sender"]
            return cmds, names, []
        if self.kind == "cluster":
            return self._cluster(workdir, hops)
        yml = write_dataflow(workdir, hops)
        return [[*self.cli, str(yml)]], ["cli"], []

    def _cluster(self, workdir: Path, hops: int) -> tuple[list[list[str]], list[str], list[Service]]:
        """The commands of deploy/README.md: coordinator + daemon on the sender's host, a daemon on the receiver's."""
        sender, receiver = self.hosts
        yml = write_dataflow(workdir, hops, {"sender": sender.name, "receiver": receiver.name})
        coord = f"tcp://{sender.ip}:{COORDINATOR_PORT}"
        services = [
            Service(
                [*sender.prefix, *self.cli, "coordinator", "--bind", coord], "coordinator", r"coordinator listening"
            )
        ]
        for h in self.hosts:
            cmd = [
                *h.prefix,
                *self.cli,
                "daemon",
                "--machine-id",
                h.name,
                "--coordinator",
                coord,
                "--bind-data",
                h.ip,
                "--advertise",
                h.ip,
            ]
            services.append(Service(cmd, f"daemon-{h.name}", r"daemon '.*' connecting"))
        start = [*sender.prefix, *self.cli, "start", str(yml), "--name", "bench", "--attach", "--coordinator", coord]
        return [start], ["cli"], services


def dora_zmq_target(name: str = "dora_zmq", env: dict[str, str] | None = None) -> Target:
    """dora_zmq through its real CLI (``python -m dora_zmq run``)."""
    return Target(name, "dataflow", (sys.executable, "-m", "dora_zmq", "run"), "dora_zmq", dict(env or {}))


def dora_zmq_cluster_target(hosts: tuple[Host, Host], name: str = "dora_zmq") -> Target:
    """dora_zmq across two hosts: sender on ``hosts[0]``, receiver on ``hosts[1]``, tcp between."""
    # daemons start right after the coordinator; give them ample time to register
    env = {"DORA_ZMQ_MACHINE_WAIT": "30"}
    return Target(name, "cluster", (sys.executable, "-m", "dora_zmq"), "dora_zmq", env, hosts=tuple(hosts))


def zmq_target(hosts: tuple[Host, Host] | None = None) -> Target:
    """The raw pyzmq + pyarrow floor (over tcp from ``hosts[0]`` to ``hosts[1]`` if given)."""
    return Target("zmq", "zmq", hosts=tuple(hosts or ()))


def dora_rs_targets(venv: Path, configs: list[str]) -> list[Target]:
    """dora-rs 1.1.0 targets: ``default`` (dora's 8 MB shared-memory pool) and ``pool256``."""
    bin_dir = venv / "bin"
    out = []
    for cfg in configs:
        if cfg == "default":
            out.append(Target("dora-rs", "dataflow", (str(bin_dir / "dora"), "run"), "dora", {}, str(bin_dir)))
        elif cfg == "pool256":
            env = {"DORA_NODE_SHM_POOL_SIZE": str(256 * 1024 * 1024)}
            out.append(Target("dora-rs pool256", "dataflow", (str(bin_dir / "dora"), "run"), "dora", env, str(bin_dir)))
        else:
            raise ValueError(f"unknown dora-rs config {cfg!r} (use default, pool256)")
    return out


def check_dora_venv(venv: Path) -> dict[str, str]:
    """Versions of a dora-rs virtualenv; raises ValueError with what is wrong and how to fix it."""
    fix = (
        f"create it with: python3 -m venv {venv} && {venv}/bin/pip install "
        f"dora-rs=={DORA_RS_VERSION} dora-rs-cli=={DORA_RS_VERSION} pyarrow numpy pyzmq"
    )
    dora, python = venv / "bin" / "dora", venv / "bin" / "python"
    for exe in (dora, python):
        if not os.access(exe, os.X_OK):
            raise ValueError(f"--dora-venv {venv}: {exe} not found; {fix}")
    try:
        cli = subprocess.run(
            [str(dora), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
        probe = subprocess.run(
            [str(python), "-c", "import dora, pyarrow, numpy, importlib.metadata as m; print(m.version('dora-rs'))"],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ValueError(f"--dora-venv {venv}: cannot run dora ({exc}); {fix}") from exc
    if probe.returncode != 0:
        raise ValueError(
            f"--dora-venv {venv}: its python cannot import dora/pyarrow/numpy: {probe.stderr.strip()[-300:]}; {fix}"
        )
    version = probe.stdout.strip()
    if version != DORA_RS_VERSION or DORA_RS_VERSION not in cli:
        log.warning("dora-rs %s / %s in %s; the peer method was written for %s", version, cli, venv, DORA_RS_VERSION)
    return {"dora-rs": version, "dora-cli": cli}


def run_target(target: Target, sizes: list[int], params: Params, hops: int, keep: bool = False) -> dict[str, Any]:
    """Run one job; returns the receiver's result (with ``wall_s``).

    Raises:
        TargetFailed: with the logs' tails; the working directory is kept for inspection.
    """
    workdir = Path(tempfile.mkdtemp(prefix="dzbench-"))
    ok = False
    try:
        out = workdir / "result.json"
        job = Job(tuple(sizes), params, str(out))
        # Tracing (and the BENCH_* modes) only where a target asks for it (the user's shell may export OTEL_*).
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "BENCH_"))}
        env.update(target.env)
        env[Job.ENV] = job.to_env()
        env[API_ENV] = target.api
        if target.path_prefix:
            env["PATH"] = target.path_prefix + os.pathsep + env.get("PATH", "")
        cmds, names, services = target.commands(workdir, hops)
        timeout = 90 + 3 * params.expected_seconds(sizes, env.get(ALTERNATE_ENV) == "1") * max(1, hops / 2)
        res = run_group(cmds, env, workdir, timeout, names, services)
        result = json.loads(out.read_text()) if out.exists() else None
        if not res.ok or result is None or not result.get("complete"):
            state = "missing" if result is None else "incomplete"
            node_logs = sorted(workdir.glob("out/**/*.txt"))
            why = f"{res.problem}; " if res.problem else ""
            raise TargetFailed(
                f"{target.name}: {why}exit codes {res.returncodes}, result {state}; logs in {workdir}\n"
                f"{res.tail(node_logs)}"
            )
        result["wall_s"] = res.seconds
        result["leaked"] = res.leaked
        ok = True
        return result
    finally:
        if ok and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
