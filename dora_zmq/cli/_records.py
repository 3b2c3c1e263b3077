"""The JSON the CLI prints (``--format json``): stable, documented keys built from control records.

These dicts are a public contract (README, "Machine-readable output"): add keys, never rename
or remove one. The control messages may change; only this module maps them.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

import click

from .. import _control as ctl

__all__ = ["daemon_json", "dataflow_json", "dump", "failure_json", "log_line_json", "output_format", "status_json"]


def output_format(command: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: ``--format table|json`` and ``--json`` (the same as ``--format json``),
    passed to the command as one ``fmt`` argument."""

    @functools.wraps(command)
    def wrapper(*args: Any, fmt: str, json_: bool, **kwargs: Any) -> Any:
        return command(*args, fmt="json" if json_ else fmt, **kwargs)

    wrapper = click.option("--json", "json_", is_flag=True, help="Same as --format json.")(wrapper)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="Output format (json: stable keys, see the README).",
    )(wrapper)


def dump(value: Any) -> str:
    """One line of JSON (what scripts and ``jq`` read)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def failure_json(f: ctl.FailureRecord) -> dict[str, Any]:
    """A failed node."""
    return {
        "node": f.node,
        "machine": f.machine,
        "exit_code": f.exit_code,
        "signal": f.signal,
        "reason": f.reason,
        "stderr_tail": f.stderr_tail,
    }


def dataflow_json(d: ctl.DataflowInfo) -> dict[str, Any]:
    """A dataflow as ``list`` and ``status`` print it."""
    return {
        "id": d.id,
        "name": d.name,
        "status": d.status,
        "started_at": d.started_at,
        "ended_at": d.ended_at,
        "nodes": dict(d.nodes),
        "machines": dict(d.machines or {}),
        "failures": [failure_json(f) for f in d.failures],
        "error": d.error,
        "dropped": dict(d.drops),
        "lost": dict(d.lost or {}),
        "undelivered": dict(d.undelivered or {}),
        "restarts": dict(d.restarts or {}),
    }


def daemon_json(d: ctl.DaemonInfo) -> dict[str, Any]:
    """A connected daemon (``machine_id`` "" is the default machine)."""
    return {
        "machine_id": d.machine_id,
        "hostname": d.hostname,
        "pid": d.pid,
        "version": d.version,
        "advertise": d.advertise,
        "node_addresses": list(d.node_addresses),
        "heartbeat_age_s": d.heartbeat_age_s,
        "connected_s": d.connected_s,
        "nodes_running": d.nodes_running,
    }


def status_json(s: ctl.CoordinatorStatus) -> dict[str, Any]:
    """``status``: the coordinator, its daemons, its dataflows."""
    return {
        "coordinator": {"address": s.address, "version": s.version, "uptime_s": s.uptime_s},
        "daemons": [daemon_json(d) for d in s.daemons],
        "dataflows": [dataflow_json(d) for d in s.dataflows],
    }


def log_line_json(msg: ctl.LogLine) -> dict[str, Any]:
    """One line of ``logs``."""
    return {"time": msg.time, "dataflow_id": msg.dataflow_id, "node": msg.node, "stream": msg.stream, "line": msg.line}
