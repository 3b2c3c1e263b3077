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


def test_the_index_names_every_message_of_every_direction() -> None:
    """``_index`` (what the package loads lazily, what decode imports) matches the modules."""
    import importlib

    from dora_zmq._control._index import DIRECTIONS

    modules = {p.stem for p in __import__("pathlib").Path(ctl.__file__).parent.glob("*_to_*.py")}
    assert {m.lstrip(".") for m in DIRECTIONS} == modules
    for module, names in DIRECTIONS.items():
        assert set(importlib.import_module(module, "dora_zmq._control").__all__) == set(names), module


def test_a_type_never_loaded_in_this_process_decodes() -> None:
    """A fresh interpreter that imported only the package decodes a message of a direction module
    it has not loaded (the codec loads it); an unknown tag imports nothing and is refused."""
    import subprocess
    import sys

    raw = ctl.encode(ctl.NodeExited("df", "n", None, 9, True, "killed", "tail", "m"))
    code = (
        "import sys\n"
        "from dora_zmq import _control as ctl\n"
        "from dora_zmq._errors import ProtocolError\n"
        "assert 'dora_zmq._control.daemon_to_coordinator' not in sys.modules\n"
        f"msg = ctl.decode({raw!r})\n"
        "assert type(msg).__name__ == 'NodeExited' and msg.node == 'n', msg\n"
        "before = set(sys.modules)\n"
        "try:\n"
        '    ctl.decode(b\'{"t": "os"}\')\n'
        "except ProtocolError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('unknown tag accepted')\n"
        "assert set(sys.modules) == before\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
