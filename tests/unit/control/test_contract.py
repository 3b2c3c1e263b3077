"""The process contract has one owner (``_control.contract``): every side uses its names."""

from __future__ import annotations

from dora_zmq import StopReason, _control
from dora_zmq import coordinator, node
from dora_zmq.daemon import _daemon as daemon
from dora_zmq.cli import _client
from dora_zmq.node import _config


def test_daemon_and_node_share_the_environment_names() -> None:
    for name in ("ENV_DAEMON", "ENV_NODE", "ENV_DATAFLOW"):  # set by the daemon, read by the node
        assert getattr(daemon, name) == getattr(_config, name) == getattr(_control, name)
    assert daemon.ENV_MACHINE == _control.ENV_MACHINE
    # the node package no longer re-exports them: one owner, one import path
    assert not any(hasattr(node, name) for name in ("ENV_DAEMON", "ENV_NODE", "ENV_DATAFLOW", "ENV_MACHINE"))
    assert _config.ENV_COORDINATOR == _client.ENV_COORDINATOR == _control.ENV_COORDINATOR
    assert _config.DEFAULT_COORDINATOR == coordinator.DEFAULT_ADDRESS == _control.DEFAULT_COORDINATOR
    assert coordinator.DEFAULT_ADDRESS.endswith(f":{coordinator.DEFAULT_PORT}")


def test_stop_reasons_are_the_public_ones() -> None:
    assert StopReason is _control.StopReason
    assert _control.StopNode().reason == _control.StopNodes("df", 1.0).reason == StopReason.MANUAL
