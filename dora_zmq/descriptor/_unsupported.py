"""Fields dora-rs 1.1 accepts that dora_zmq does not implement, and what to do instead.

A dataflow written for dora may use them. Accepting them and doing nothing would change what
the dataflow does without a word, and a did-you-mean to some other field would mislead: the
check names the field as dora's and says it is not implemented here.
"""

from __future__ import annotations

__all__ = ["UNSUPPORTED", "unsupported_reason"]

_REMOVE = "remove it"

UNSUPPORTED: dict[str, dict[str, str]] = {
    "top-level": {
        "debug": _REMOVE,
        "health_check_interval": "remove it: daemons and nodes are watched by heartbeats and the process tree here",
        "strict_types": "remove it: dora_zmq has no type annotations on ports",
        "type_rules": "remove it: dora_zmq has no type annotations on ports",
        "exit_when_nodes_finish": _REMOVE,
    },
    "node": {
        "path_sha256": _REMOVE,
        "ros2": "remove it: dora_zmq has no ROS 2 bridge; use a node that bridges with rclpy",
        "output_types": "remove it: dora_zmq has no type annotations on ports",
        "input_types": "remove it: dora_zmq has no type annotations on ports",
        "output_framing": _REMOVE,
        "output_metadata": _REMOVE,
        "pattern": _REMOVE,
        "send_logs_as": "remove it; `send_stdout_as` turns stdout lines into an output",
        "min_log_level": _REMOVE,
        "max_log_size": _REMOVE,
        "max_rotated_files": _REMOVE,
        "git": "remove it: clone the repository yourself and point `path:` (and `build:`) at it",
        "hub": _REMOVE,
        "branch": "remove it: clone the repository yourself and point `path:` (and `build:`) at it",
        "tag": "remove it: clone the repository yourself and point `path:` (and `build:`) at it",
        "rev": "remove it: clone the repository yourself and point `path:` (and `build:`) at it",
        "shared_memory_pool_size": "remove it: values from 64 KiB go through shared memory (DORA_ZMQ_SHM_THRESHOLD)",
        "health_check_timeout": _REMOVE,
        "finish_grace_secs": _REMOVE,
        "module": _REMOVE,
        "params": _REMOVE,
        "cpu_affinity": "remove it, or pin the node with `taskset` in `path:`/`args:`",
    },
    "operator": {
        "output_types": "remove it: dora_zmq has no type annotations on ports",
        "input_types": "remove it: dora_zmq has no type annotations on ports",
        "output_framing": _REMOVE,
        "output_metadata": _REMOVE,
        "pattern": _REMOVE,
        "send_logs_as": _REMOVE,
        "min_log_level": _REMOVE,
        "max_log_size": _REMOVE,
        "max_rotated_files": _REMOVE,
    },
    "input": {
        "input_timeout": _REMOVE,
        "queue_policy": "remove it: an input keeps the newest `queue_size` messages",
    },
    "deploy": {
        "working_dir": _REMOVE,
        "labels": _REMOVE,
        "distribute": _REMOVE,
        "enable_debug_inspection": _REMOVE,
    },
}


def unsupported_reason(what: str, key: str) -> str | None:
    """What to do about ``key``, a field of ``what`` that dora accepts and dora_zmq does not."""
    return UNSUPPORTED.get(what, {}).get(key)
