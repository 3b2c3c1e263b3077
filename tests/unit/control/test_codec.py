"""The control codec: round trips, and nonsense rejected before it reaches a handler."""

from __future__ import annotations

import pytest

from dora_zmq import _control as ctl
from dora_zmq._errors import ProtocolError


@pytest.mark.parametrize(
    "msg",
    [
        ctl.Peers("df", {"a": ctl.NodeEndpoint("m", "ipc:///x", "tcp://h:1")}, ["b"]),
        ctl.NodeExited("df", "n", None, 9, True, "killed", "tail", "m"),
        ctl.DataflowResult(
            "df", "name", False, [ctl.FailureRecord("n", 1, None, "t", "r", "m")], True, {"n/i": 3}, None
        ),
        ctl.StartDataflow("nodes: []", "/x.yml", "/", None, True),
        ctl.RegisterDaemon("cam", "0.1.0", ctl.PROTOCOL_VERSION, "host", 12, ["ipc:///d", "tcp://h:2"]),
        ctl.Ping(),
        ctl.StartDataflow(
            "nodes: []", "/x.yml", "/", "n", False, ctl.ShipMode.AUTO, ctl.BundleRef("a" * 64, 10), "64768:12"
        ),
        ctl.SpawnNodes(
            "df",
            "n",
            "nodes: []",
            "/",
            ["a"],
            True,
            "",
            ctl.ShipMode.ALWAYS,
            ctl.BundleRef("a" * 64, 10),
            "1:2",
            "/x.yml",
        ),
        ctl.OfferBundle(ctl.BundleRef("a" * 64, 10)),
        ctl.BundleChunk("a" * 64, 0, "AAEC"),
        ctl.BundleWanted("a" * 64, 10),
        ctl.FetchBundle("a" * 64, 262144),
        ctl.BundleUnavailable("a" * 64, "evicted"),
    ],
)
def test_round_trip(msg: object) -> None:
    assert ctl.decode(ctl.encode(msg)) == msg


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"no": "type"}',
        b'{"t": "NoSuchMessage"}',
        b'{"t": "StopNodes", "dataflow_id": "d"}',  # missing field
        b'{"t": "StopNodes", "dataflow_id": 1, "grace_s": 2}',  # wrong scalar type
        b'{"t": "StopNodes", "dataflow_id": "d", "grace_s": true}',  # bool is not a number here
        b'{"t": "NodeReady", "dataflow_id": "d", "node": "n", "endpoint": "oops"}',  # record expected
        b'{"t": "Peers", "dataflow_id": "d", "endpoints": [], "exited": []}',  # mapping expected
        b'{"t": "Peers", "dataflow_id": "d", "endpoints": {}, "exited": [1]}',  # list of str expected
    ],
)
def test_malformed_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        ctl.decode(raw)


def test_int_is_accepted_for_float() -> None:
    assert ctl.decode(b'{"t": "StopNodes", "dataflow_id": "d", "grace_s": 2}').grace_s == 2
