"""A dataflow on this machine, from the coordinator's ``SpawnNodes`` to the removal of its files.

Which folder a dataflow's ipc sockets (and a shipped copy of its files) live in, where its
nodes run from, which of the nodes it names this daemon spawns, what a node is told when it
registers, and what is removed when the last one is gone. Starting each node is
``._spawning``'s; deciding when is the event loop's (``Daemon``).

Threading: no state of its own; what it makes is handed to the daemon's event-loop thread,
which owns it from then on.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from .. import _control as ctl
from .._errors import DescriptorError
from .._shm import cleanup_segments
from ..descriptor import NodeKind, parse_dataflow
from ..descriptor._plain import to_plain
from ._restart import RestartBook
from ._shipments import WORK_DIR, runs_in_place
from ._state import DataflowState, Senders

__all__ = [
    "DATAFLOW_DIR_CHARS",
    "dataflow_dir",
    "new_dataflow",
    "node_setup",
    "nodes_to_spawn",
    "remove_dataflow_files",
]

log = logging.getLogger(__name__)

#: Characters of a dataflow id that name its run folder. Node sockets live in it, and an ipc
#: socket's whole path must fit ZeroMQ's 107 bytes; 12 characters of the coordinator's uuid4
#: (44 random bits) tell apart the few dataflows of one daemon.
DATAFLOW_DIR_CHARS = 12


def dataflow_dir(run_dir: Path, dataflow_id: str) -> Path:
    """The run folder of dataflow ``dataflow_id`` in the daemon's ``run_dir``."""
    return run_dir / dataflow_id[:DATAFLOW_DIR_CHARS]


def new_dataflow(msg: ctl.SpawnNodes, run_dir: Path, *, accept_shipped: bool) -> DataflowState | str:
    """The state of the dataflow ``msg`` starts here, its run folder made; or why it cannot start.

    Args:
        accept_shipped: run from the folder the coordinator ships (unless the dataflow runs in
            place); False runs from the CLI's folder, which must be on this machine.
    """
    if not ctl.is_safe_dataflow_id(msg.dataflow_id):
        return "refused: not a valid dataflow id"  # it names this dataflow's folders: never a path
    ipc_dir = dataflow_dir(run_dir, msg.dataflow_id)
    shipped = accept_shipped and not runs_in_place(msg)
    working_dir = ipc_dir / WORK_DIR if shipped else Path(msg.working_dir)
    try:
        descriptor = parse_dataflow(msg.yaml, working_dir=working_dir, check_paths=False)
    except DescriptorError as exc:
        return f"invalid dataflow: {exc}"
    try:
        ipc_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the dataflow's run folder {ipc_dir}: {exc}"
    return DataflowState(
        msg.dataflow_id,
        msg.name,
        msg.yaml,
        descriptor,
        working_dir,
        ipc_dir,
        list(msg.nodes),
        msg.multi_machine,
        senders=Senders(frozenset(msg.nodes)),
        shipped=shipped,
        waiting_for_folder=shipped,
        trace_context=msg.trace_context,
        reader_secret=msg.reader_secret,
        restarts=RestartBook(descriptor),
    )


def nodes_to_spawn(df: DataflowState) -> tuple[list[str], dict[str, str]]:
    """The nodes of ``df`` this daemon spawns (not the dynamic ones, which start on their own),
    and the ones it cannot, with why (not in the dataflow)."""
    spawn: list[str] = []
    unknown: dict[str, str] = {}
    for node_id in df.nodes:
        try:
            if df.descriptor.node(node_id).kind is not NodeKind.DYNAMIC:
                spawn.append(node_id)
        except KeyError as exc:
            unknown[node_id] = f"not in the dataflow: {exc}"
    return spawn, unknown


def node_setup(df: DataflowState, node: str, machine_id: str, tcp_bind: str, advertise: str) -> ctl.NodeSetup:
    """What ``node`` of ``df`` is told when it registers (``tcp_bind``: the daemon's ``--bind``)."""
    has_dynamic = any(n.kind is NodeKind.DYNAMIC for n in df.descriptor.nodes)
    # Peers on other hosts (other daemons' nodes, dynamic nodes) need tcp endpoints.
    bind = f"tcp://{tcp_bind}:*" if (df.multi_machine or has_dynamic) and tcp_bind else ""
    if df.plain is None:
        df.plain = to_plain(df.descriptor)
    return ctl.NodeSetup(
        df.id,
        node,
        df.yaml,
        str(df.working_dir),
        machine_id,
        str(df.ipc_dir),
        bind,
        advertise,
        stopping=bool(df.stopping),
        reader_token=df.reader_token(node),
        reader_tokens={n: df.reader_token(n) for n in df.descriptor.downstream_nodes(node)},
        restart_count=df.restarts.count(node) if df.restarts else 0,
        dataflow=df.plain,
    )


def remove_dataflow_files(df: DataflowState) -> None:
    """Remove what ``df`` left on this machine: its run folder, and its shared memory.

    Only once every local node of ``df`` is gone: shared-memory messages nobody released (a
    crashed node, or an exit before a receiver mapped them) are safe to remove only then.
    """
    shutil.rmtree(df.ipc_dir, ignore_errors=True)
    removed = cleanup_segments(df.id)
    if removed:
        log.info("dataflow %s: removed %d shared-memory segment(s)", df.id, removed)
