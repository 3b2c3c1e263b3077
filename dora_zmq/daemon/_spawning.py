"""Starting one node: its command line, environment, log file and process; and a queue that
spreads the spawns of a large dataflow over many passes of the daemon's loop.

Why a queue: starting a process is synchronous (``Popen`` returns once the child has exec'd),
and on a loaded machine the child waits for a CPU before it can: measured here, 65 ms per node
while 100 Python nodes start on 2 cores, so 6.5 s for one ``SpawnNodes`` if done in one go.
Meanwhile the loop would answer no node's registration, reap nothing, relay no log and honour
no STOP. Spawning at most ``SPAWN_SLICE_S`` per pass keeps every pass short; the nodes started
first register and run while the rest are being started.

Threading: owned by the daemon's event loop thread (the queue, and the ``DataflowState`` that
``start_node`` records the new process's token in).
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import time
from collections import OrderedDict, deque
from pathlib import Path
from typing import Iterator

from .. import _control as ctl
from ..descriptor import NodeKind, NodeSpec, find_program
from ._state import DataflowState
from ._supervisor import Supervisor

__all__ = ["NODE_TOKEN_BYTES", "SPAWN_SLICE_S", "SpawnQueue", "node_argv", "node_env", "node_log_path", "start_node"]

log = logging.getLogger(__name__)

#: Random bytes of the one-time token a spawned node registers with (``check_token``): unguessable.
NODE_TOKEN_BYTES = 16

#: Longest a pass of the loop spends starting nodes (at least one is started per pass).
SPAWN_SLICE_S = 0.05


class SpawnQueue:
    """Nodes waiting to be started, per dataflow, in the order their dataflows came."""

    def __init__(self) -> None:
        self._queued: OrderedDict[str, deque[str]] = OrderedDict()

    def add(self, df_id: str, nodes: list[str]) -> None:
        """Queue ``nodes`` of dataflow ``df_id``."""
        if nodes:  # an entry is never empty: ``pending`` and ``due`` rely on it
            self._queued.setdefault(df_id, deque()).extend(nodes)

    def __bool__(self) -> bool:
        return bool(self._queued)

    def pending(self, df_id: str) -> bool:
        """True while some node of ``df_id`` waits to be started."""
        return df_id in self._queued

    def drop(self, df_id: str) -> list[str]:
        """Unqueue (and return) the nodes of ``df_id`` not started yet: it is stopping."""
        return list(self._queued.pop(df_id, ()))

    def due(self, slice_s: float = SPAWN_SLICE_S) -> Iterator[tuple[str, str]]:
        """``(dataflow id, node)`` to start now, for about ``slice_s`` of the caller's time."""
        deadline = time.monotonic() + slice_s
        while self._queued:
            df_id, nodes = next(iter(self._queued.items()))
            node = nodes.popleft()
            if not nodes:
                del self._queued[df_id]
            yield df_id, node
            if time.monotonic() >= deadline:
                return


def node_argv(df: DataflowState, spec: NodeSpec) -> list[str] | str:
    """The command line of a node, or why it cannot be started."""
    if spec.kind is NodeKind.RUNTIME:
        return [sys.executable, "-u", "-m", "dora_zmq.operators"]
    path = spec.executable
    if path is None and spec.path:
        candidate = Path(spec.path) if os.path.isabs(spec.path) else df.working_dir / spec.path
        path = candidate if candidate.exists() else (Path(w) if (w := find_program(spec.path)) else None)
    if path is None or not path.exists():
        return f"node '{spec.id}': path '{spec.path}' not found (looked in {df.working_dir} and on PATH)"
    if path.suffix == ".py":
        return [sys.executable, "-u", str(path), *spec.args]
    return [str(path), *spec.args]


def node_log_path(run_dir: Path, df: DataflowState, node: str) -> Path:
    """Where a node's output is written."""
    # A shipped copy goes when the dataflow ends: its nodes' log files live in the run
    # folder (until the daemon stops; the coordinator keeps the lines for `dora-zmq logs`).
    bases = [run_dir / "logs" / df.id] if df.shipped else [df.working_dir / "out" / df.id, run_dir / "logs" / df.id]
    for base in bases:
        try:
            base.mkdir(parents=True, exist_ok=True)
            return base / f"log_{node}.txt"
        except OSError:
            continue
    return run_dir / f"log_{df.id}_{node}.txt"


def node_env(df: DataflowState, spec: NodeSpec, daemon_address: str, machine_id: str, token: str) -> dict[str, str]:
    """The environment of a node's process: the daemon's, the node's ``env:``, then the contract's names."""
    env = dict(os.environ)
    env.update(spec.env)
    env.update(
        {
            ctl.ENV_NODE_TOKEN: token,
            ctl.ENV_DAEMON: daemon_address,
            ctl.ENV_NODE: spec.id,
            ctl.ENV_DATAFLOW: df.id,
            ctl.ENV_MACHINE: machine_id,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def start_node(
    supervisor: Supervisor, df: DataflowState, spec: NodeSpec, run_dir: Path, daemon_address: str, machine_id: str
) -> str:
    """Start ``spec``'s process under ``supervisor``; "" once started, else why it could not be.

    A started node is live in ``df`` and registers once, with the new token it was given.
    """
    argv = node_argv(df, spec)
    if isinstance(argv, str):
        return argv
    token = secrets.token_hex(NODE_TOKEN_BYTES)
    env = node_env(df, spec, daemon_address, machine_id, token)
    try:
        supervisor.spawn(df.id, spec.id, argv, env, df.working_dir, node_log_path(run_dir, df, spec.id))
    except Exception as exc:  # noqa: BLE001 - whatever stops a spawn (OSError, a NUL byte's
        # ValueError, SubprocessError...) is this node's failure: unreported, the dataflow
        # would wait in "spawning" for ever.
        log.warning("dataflow %s: could not start node %s: %s: %s", df.id, spec.id, type(exc).__name__, exc)
        return f"could not start {argv[0]}: {exc}"
    df.tokens[spec.id] = token  # a new process (a restart too): it registers once, with this
    df.registered.discard(spec.id)
    df.live.add(spec.id)
    return ""
