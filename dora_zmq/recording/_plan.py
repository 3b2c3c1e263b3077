"""Dataflow rewrites for recording and replay: add a recorder node, swap nodes for replays.

Both work on the plain YAML tree and parse the result again, so the coordinator, the daemons
and every node see an ordinary dataflow: the recorder is a subscriber like any other (it
works across machines and is never on the data path), a replay node a publisher like any other.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

import yaml

from .._errors import RecordingError
from ..descriptor import Dataflow, NodeKind, OutputRef, parse_dataflow
from ._format import RECORD_PROGRAM, REPLAY_PROGRAM, Manifest

__all__ = [
    "RECORDER_ID",
    "DEFAULT_RECORD_QUEUE",
    "with_recorder",
    "with_replays",
    "recorded_outputs",
    "source_nodes",
    "without_node",
]

RECORDER_ID = "dora-zmq-recorder"
DEFAULT_RECORD_QUEUE = 1000
"""Messages each recorder input may hold while the recorder writes (then the oldest drop, counted)."""


def recorded_outputs(flow: Dataflow, only: Iterable[str] = ()) -> list[str]:
    """Every output topic of the dataflow (or those in ``only``; a node id means all of its)."""
    topics = [f"{n.id}/{o}" for n in flow.nodes for o in n.outputs]
    wanted = list(only)
    if not wanted:
        return topics
    picked = [t for t in topics if t in wanted or t.split("/", 1)[0] in wanted]
    unknown = [w for w in wanted if w not in topics and w not in {n.id for n in flow.nodes}]
    if unknown:
        raise RecordingError(f"nothing to record named {', '.join(unknown)} (outputs: {', '.join(topics) or 'none'})")
    return picked


def with_recorder(
    flow: Dataflow,
    folder: Path,
    name: str | None,
    machine: str | None = None,
    only: Iterable[str] = (),
    queue_size: int = DEFAULT_RECORD_QUEUE,
) -> Dataflow:
    """``flow`` plus a recorder node subscribed to its outputs, writing to ``folder``.

    Args:
        flow: the validated dataflow.
        folder: the recording folder, on the recorder's machine (made absolute here).
        name: the dataflow's name, for the manifest.
        machine: where the recorder runs (default: the dataflow's default machine).
        only: outputs (``node/output``) or node ids to record; empty: every output.
        queue_size: each recorder input's queue.

    Raises:
        RecordingError: nothing to record.
    """
    topics = recorded_outputs(flow, only)
    if not topics:
        raise RecordingError("the dataflow declares no outputs: there is nothing to record")
    ids = {n.id for n in flow.nodes}
    recorder_id = _unique(RECORDER_ID, ids)
    inputs: dict[str, Any] = {}
    for topic in topics:
        inputs[_unique(re.sub(r"[^A-Za-z0-9_.-]", ".", topic), set(inputs))] = {
            "source": topic,
            "queue_size": queue_size,
        }
    args = ["--out", str(folder.absolute())]
    if name:
        args += ["--name", name]
    node: dict[str, Any] = {"id": recorder_id, "path": RECORD_PROGRAM, "args": args, "inputs": inputs}
    if machine:
        node["deploy"] = {"machine": machine}
    raw = _plain(flow)
    raw["nodes"].append(node)
    return _reparse(flow, raw)


def without_node(flow: Dataflow, node_id: str) -> str:
    """The dataflow's YAML text without one node (the recorder keeps the dataflow as it was)."""
    raw = _plain(flow)
    raw["nodes"] = [n for n in raw["nodes"] if not (isinstance(n, dict) and n.get("id") == node_id)]
    return str(yaml.safe_dump(raw, sort_keys=False))


def source_nodes(flow: Dataflow, manifest: Manifest) -> list[str]:
    """Recorded nodes that read no other node (sensors, timers only): what replay swaps by default."""
    recorded = {o.node for o in manifest.outputs if o.messages}
    return [
        n.id
        for n in flow.nodes
        if n.id in recorded
        and n.kind is NodeKind.CUSTOM
        and not any(isinstance(i.source, OutputRef) for i in n.inputs.values())
    ]


def with_replays(
    flow: Dataflow,
    folder: Path,
    manifest: Manifest,
    nodes: Iterable[str],
    replay_args: list[str],
) -> Dataflow:
    """``flow`` with each of ``nodes`` replaced by a replay node publishing its recorded outputs.

    Raises:
        RecordingError: a node is unknown, hosts operators, or was not recorded.
    """
    recorded = {o.node for o in manifest.outputs}
    replace = list(nodes)
    raw = _plain(flow)
    for node_id in replace:
        try:
            spec = flow.node(node_id)
        except KeyError as exc:
            raise RecordingError(str(exc.args[0])) from None
        if spec.kind is not NodeKind.CUSTOM:
            raise RecordingError(
                f"node '{node_id}' is a {spec.kind.value} node; only programs (`path:` nodes) can be replayed"
            )
        if node_id not in recorded:
            raise RecordingError(
                f"node '{node_id}' was not recorded (recorded nodes: {', '.join(sorted(recorded)) or 'none'})"
            )
        entry: dict[str, Any] = {
            "id": node_id,
            "path": REPLAY_PROGRAM,
            "args": [str(folder.absolute()), *replay_args],
            "outputs": list(spec.outputs),
        }
        if spec.machine:
            entry["deploy"] = {"machine": spec.machine}
        raw["nodes"] = [entry if isinstance(n, dict) and n.get("id") == node_id else n for n in raw["nodes"]]
    return _reparse(flow, raw)


def _plain(flow: Dataflow) -> dict[str, Any]:
    # A deep copy through YAML: the tree holds only plain values (it came from YAML).
    raw = yaml.safe_load(yaml.safe_dump(dict(flow.raw), sort_keys=False))
    if not isinstance(raw, dict) or not isinstance(raw.get("nodes"), list):
        raise RecordingError("the dataflow has no `nodes` list")
    return raw


def _reparse(flow: Dataflow, raw: dict[str, Any]) -> Dataflow:
    text = yaml.safe_dump(raw, sort_keys=False)
    # Paths were checked when ``flow`` was loaded; the added programs are found by the daemon.
    return parse_dataflow(text, path=flow.path, working_dir=flow.working_dir, check_paths=False)


def _unique(base: str, taken: set[str]) -> str:
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}-{k}"
    return name
