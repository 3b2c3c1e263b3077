"""The daemon's identity policy (daemon/_identity.py): pure decisions, no sockets."""

from __future__ import annotations

from pathlib import Path

import pytest

from dora_zmq import _control as ctl
from dora_zmq.daemon._identity import (
    check_identities,
    check_token,
    control_identity,
    find_dynamic,
    key_refusal,
    sender_refusal,
)
from dora_zmq.daemon._state import DataflowState, Senders
from dora_zmq.descriptor import parse_dataflow
from dora_zmq.security import TRUSTED, Peer, Role

_YAML = """
nodes:
  - id: cam
    path: dynamic
    outputs: [image]
  - id: det
    path: det.py
    inputs:
      image: cam/image
"""


def _dataflow(df_id: str = "df1", stopping: str = "") -> DataflowState:
    descriptor = parse_dataflow(_YAML, working_dir=Path("/nonexistent"), check_paths=False)
    nodes = ["cam", "det"]
    return DataflowState(
        df_id,
        "demo",
        _YAML,
        descriptor,
        Path("/nonexistent"),
        Path("/nonexistent/ipc"),
        nodes,
        False,
        senders=Senders(frozenset(nodes)),
        stopping=stopping,
    )


def _register(node: str, token: str = "", df_id: str = "df1") -> ctl.RegisterNode:
    return ctl.RegisterNode(df_id, node, 1234, ctl.PROTOCOL_VERSION, token=token)


def test_control_identity_names_the_machine_and_is_unguessable() -> None:
    a, b = control_identity("edge"), control_identity("edge")
    assert a.startswith("daemon/edge/") and b.startswith("daemon/edge/")
    assert a != b  # the random part: another process cannot take this daemon's place
    assert len(a.rsplit("/", 1)[1]) == 32


def test_find_dynamic_skips_daemon_started_nodes_and_stopping_dataflows() -> None:
    df = _dataflow()
    assert find_dynamic([df], "cam") is df
    assert find_dynamic([df], "det") is None
    assert find_dynamic([df], "nobody") is None
    assert find_dynamic([_dataflow(stopping="manual")], "cam") is None


@pytest.mark.parametrize(
    ("sender", "msg", "refused"),
    [
        (TRUSTED, _register("det"), ""),
        (Peer(frozenset({Role.DAEMON}), "d1"), _register("det"), ""),
        (Peer(frozenset({Role.OPERATOR}), "alice"), _register("cam"), "not a node or daemon key"),
        (Peer(frozenset({Role.NODE}), "cam"), _register("det"), "may only run node 'cam'"),
        (Peer(frozenset({Role.NODE}), "det"), _register("det"), "runs only `path: dynamic` nodes"),
        # no dataflow named and no dynamic node 'det': the registration is refused later, as no node's
        (Peer(frozenset({Role.NODE}), "det"), _register("det", df_id=""), ""),
        (Peer(frozenset({Role.NODE}), "cam"), _register("cam"), ""),
        (Peer(frozenset({Role.NODE}), "cam"), _register("cam", df_id=""), ""),  # found as a dynamic node
    ],
)
def test_key_refusal(sender: Peer, msg: ctl.RegisterNode, refused: str) -> None:
    why = key_refusal(sender, msg, {"df1": _dataflow()})
    if refused:
        assert refused in why
    else:
        assert why == ""


def test_sender_refusal_trusts_the_connection_not_the_claim() -> None:
    senders = Senders(frozenset({"cam", "det"}))
    senders.bind("cam", [b"c1", b"c2"], announced=True)
    senders.bind("det", [b"d1"], announced=False)
    stats = object()
    assert sender_refusal(senders, b"c2", stats, "df1", "cam", unverified_ok=False) == ""
    assert "claiming to come from node 'cam'" in sender_refusal(senders, b"d1", stats, "df1", "cam", unverified_ok=True)
    assert "which is node 'det'" in sender_refusal(senders, b"d1", stats, "df1", "cam", unverified_ok=True)
    # an older node's unannounced second socket: only where the caller accepts it
    assert sender_refusal(senders, b"??", stats, "df1", "det", unverified_ok=True) == ""
    assert "no node of that dataflow" in sender_refusal(senders, b"??", stats, "df1", "det", unverified_ok=False)
    assert "runs no node 'x'" in sender_refusal(senders, b"c1", stats, "df1", "x", unverified_ok=True)
    assert "runs no dataflow df9" in sender_refusal(None, b"c1", stats, "df9", "cam", unverified_ok=True)


def test_check_token_lets_the_spawned_process_register_once() -> None:
    df = _dataflow()
    assert "not started by this daemon" in check_token(df, _register("det", "t"))
    df.tokens["det"] = "secret"
    assert "only that process" in check_token(df, _register("det", "guess"))
    assert check_token(df, _register("det", "secret")) == ""
    assert "registered already" in check_token(df, _register("det", "secret"))
    assert check_token(df, _register("cam")) == ""  # dynamic: no token


def test_check_identities_keeps_each_connection_to_its_node() -> None:
    df = _dataflow()
    df.senders.bind("cam", [b"c1", b"c2"], announced=True)
    assert check_identities(df, "cam", b"c1", b"c2") == ""  # registering again
    assert "this connection is node 'cam'" in check_identities(df, "det", b"c1", b"")
    assert "the announced sender identity is node 'cam'" in check_identities(df, "det", b"d1", b"c2")
    for bad in (b"d1", b"\0x", b"x" * 256):
        assert "invalid sender identity" in check_identities(df, "det", b"d1", bad)
    assert check_identities(df, "det", b"d1", b"x" * 255) == ""
