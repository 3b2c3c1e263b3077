"""Key folders (``dora-zmq keys``): the key sets written, file modes, re-runs, loading them at run
time, ``authorized/`` read again as it changes, and a real CURVE handshake with role user ids."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from zmq.auth import load_certificate

from dora_zmq.security import (
    ALL_ROLES,
    ENV_CLIENT,
    ENV_KEYS,
    KeyTable,
    Peer,
    Plane,
    Role,
    SecurityError,
    generate_keys,
    key_config,
    peer_of,
)
from dora_zmq.security import _curve

pytestmark = pytest.mark.timeout(30)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_the_key_set_of_a_deployment(tmp_path: Path) -> None:
    written = generate_keys(tmp_path, [], {Role.OPERATOR: ["laptop"], Role.DAEMON: ["m1", "m2"], Role.NODE: ["edge"]})
    assert _files(tmp_path) == {
        "server.key",
        "server.key_secret",
        "data.key",
        "data.key_secret",
        "clients/operator/laptop.key",
        "clients/operator/laptop.key_secret",
        "clients/daemon/m1.key",
        "clients/daemon/m1.key_secret",
        "clients/daemon/m2.key",
        "clients/daemon/m2.key_secret",
        "clients/node/edge.key",
        "clients/node/edge.key_secret",
        "authorized/operator/laptop.key",
        "authorized/daemon/m1.key",
        "authorized/daemon/m2.key",
        "authorized/node/edge.key",
    }
    assert {str(p.relative_to(tmp_path)) for p in written} == _files(tmp_path) - {
        f for f in _files(tmp_path) if f.startswith("authorized/")
    }
    # authorized/ holds the very public keys of clients/
    assert (tmp_path / "authorized/daemon/m1.key").read_bytes() == (tmp_path / "clients/daemon/m1.key").read_bytes()


def test_no_key_named_makes_one_with_every_role(tmp_path: Path) -> None:
    generate_keys(tmp_path, [])
    assert {"clients/default.key_secret", "authorized/default.key"} <= _files(tmp_path)
    table = KeyTable(tmp_path / "authorized")
    default = load_certificate(tmp_path / "clients/default.key")[0]
    assert peer_of(table.user_id(default) or "") == Peer(ALL_ROLES, "default")


def test_file_modes_and_their_repair_on_a_rerun(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    generate_keys(folder, ["ops"], {Role.DAEMON: ["m1"]})
    secrets = list(folder.rglob("*.key_secret"))
    assert secrets and all(_mode(p) == 0o600 for p in secrets)
    folders = ["", "clients", "authorized", "clients/daemon", "authorized/daemon"]
    assert all(_mode(folder / d) == 0o700 for d in folders)
    os.chmod(folder / "clients/daemon/m1.key_secret", 0o644)
    os.chmod(folder / "clients", 0o755)
    generate_keys(folder, [], {Role.NODE: ["edge"]})
    assert _mode(folder / "clients/daemon/m1.key_secret") == 0o600 and _mode(folder / "clients") == 0o700


def test_a_rerun_keeps_existing_keys_and_adds_new_ones(tmp_path: Path) -> None:
    generate_keys(tmp_path, [], {Role.DAEMON: ["m1"]})
    kept = ("server.key_secret", "data.key", "clients/daemon/m1.key_secret")
    before = {name: (tmp_path / name).read_bytes() for name in kept}
    written = generate_keys(tmp_path, [], {Role.DAEMON: ["m1", "m2"]})
    assert [p.name for p in written] == ["m2.key", "m2.key_secret"]
    assert all((tmp_path / name).read_bytes() == raw for name, raw in before.items())


@pytest.mark.parametrize("name", ["a/b", "", ".", ".."])
def test_invalid_key_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(SecurityError, match="invalid key name"):
        generate_keys(tmp_path, [], {Role.NODE: [name]})


def test_key_config_from_the_environment(tmp_path: Path) -> None:
    assert key_config({}) is None  # no DORA_ZMQ_KEYS: no CURVE
    with pytest.raises(SecurityError, match="no server.key there"):
        key_config({ENV_KEYS: str(tmp_path)})
    generate_keys(tmp_path, [], {Role.DAEMON: ["m1"]})
    with pytest.raises(SecurityError, match="client key .* not found"):
        key_config({ENV_KEYS: str(tmp_path)})  # no default key in this folder: name the machine's
    with pytest.raises(SecurityError, match="holds no secret key"):
        key_config({ENV_KEYS: str(tmp_path), ENV_CLIENT: str(tmp_path / "clients/daemon/m1.key")})
    config = key_config({ENV_KEYS: str(tmp_path), ENV_CLIENT: str(tmp_path / "clients/daemon/m1.key_secret")})
    assert config is not None
    m1_public, m1_secret = load_certificate(tmp_path / "clients/daemon/m1.key_secret")
    assert (config.client_public, config.client_secret) == (m1_public, m1_secret)
    assert config.server_public == load_certificate(tmp_path / "server.key")[0]
    assert config.data_public == load_certificate(tmp_path / "data.key")[0] != config.server_public
    assert config.authorized == tmp_path / "authorized"


def test_a_machine_without_secrets_still_loads_the_public_server_keys(tmp_path: Path) -> None:
    generate_keys(tmp_path, ["default"])
    (tmp_path / "server.key_secret").unlink()  # a CLI machine gets public keys only
    (tmp_path / "data.key_secret").unlink()
    config = key_config({ENV_KEYS: str(tmp_path)})
    assert config is not None and config.server_secret is None and config.data_secret is None


def test_a_folder_without_data_key_serves_the_data_plane_with_server_key(tmp_path: Path) -> None:
    generate_keys(tmp_path, ["default"])
    (tmp_path / "data.key").unlink()
    (tmp_path / "data.key_secret").unlink()
    config = key_config({ENV_KEYS: str(tmp_path)})
    assert config is not None
    assert (config.data_public, config.data_secret) == (config.server_public, config.server_secret)


def test_authorized_is_read_again_when_keys_are_added_replaced_or_broken(tmp_path: Path) -> None:
    generate_keys(tmp_path, [], {Role.NODE: ["edge"]})
    table = KeyTable(tmp_path / "authorized")
    edge = load_certificate(tmp_path / "clients/node/edge.key")[0]
    assert table.user_id(edge) == "node:edge"
    generate_keys(tmp_path, [], {Role.DAEMON: ["late"]})  # added while running
    late = load_certificate(tmp_path / "clients/daemon/late.key")[0]
    assert table.user_id(late) == "daemon:late" and table.allows(Plane.DATA, late)
    # a node key moved to the operator folder loses the data plane
    (tmp_path / "authorized/operator").mkdir(mode=0o700)
    os.rename(tmp_path / "authorized/node/edge.key", tmp_path / "authorized/operator/edge.key")
    assert table.user_id(edge) == "operator:edge" and not table.allows(Plane.DATA, edge)
    (tmp_path / "authorized/broken.key").write_text("not a key file\n")
    assert table.user_id(late) == "daemon:late"  # an unreadable file is skipped, the rest stays
    assert table.user_id(b"0" * 40) is None


def test_planes_and_peer_descriptions() -> None:
    assert Peer(frozenset({Role.NODE}), "edge").describe() == "a node key 'edge'"
    assert Peer(frozenset({Role.OPERATOR}), "laptop").describe() == "an operator key 'laptop'"
    assert Peer(ALL_ROLES, "x").describe() == "an any-role key 'x'"
    assert peer_of("").describe() == "no key (no CURVE)"
    assert peer_of("client:old") == Peer(ALL_ROLES, "old")


@pytest.fixture
def curve_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Keys for this process alone: the module's cached config and authenticator are reset after."""
    generate_keys(tmp_path, [], {Role.NODE: ["edge"], Role.OPERATOR: ["laptop"]})
    monkeypatch.setattr(_curve, "_loaded", True)
    env = {ENV_KEYS: str(tmp_path), ENV_CLIENT: str(tmp_path / "clients/node/edge.key_secret")}
    monkeypatch.setattr(_curve, "_config", key_config(env))
    monkeypatch.setattr(_curve, "_auth", None)
    try:
        yield tmp_path
    finally:
        _curve.stop_authenticator()


def test_a_curve_handshake_carries_the_role_and_refuses_the_wrong_plane(curve_keys: Path) -> None:
    if not zmq.has("curve"):
        pytest.skip("this libzmq has no CURVE")
    ctx = zmq.Context()
    sockets: list[zmq.Socket[bytes]] = []
    try:
        server = ctx.socket(zmq.ROUTER)
        sockets.append(server)
        server.setsockopt(zmq.LINGER, 0)
        _curve.secure_server(server, Plane.DATA)
        port = server.bind_to_random_port("tcp://127.0.0.1")
        node = ctx.socket(zmq.DEALER)  # this process's client key: the node key 'edge'
        sockets.append(node)
        node.setsockopt(zmq.LINGER, 0)
        _curve.secure_client(node, Plane.DATA)
        node.connect(f"tcp://127.0.0.1:{port}")
        node.send(b"hello")
        assert server.poll(5000)
        frames = server.recv_multipart(copy=False)
        assert frames[-1].bytes == b"hello" and frames[-1].get("User-Id") == "node:edge"

        # An operator key may not use the data plane: its messages never arrive.
        laptop_public, laptop_secret = load_certificate(curve_keys / "clients/operator/laptop.key_secret")
        operator = ctx.socket(zmq.DEALER)
        sockets.append(operator)
        operator.setsockopt(zmq.LINGER, 0)
        operator.curve_serverkey = load_certificate(curve_keys / "data.key")[0]
        operator.curve_publickey, operator.curve_secretkey = laptop_public, laptop_secret
        operator.connect(f"tcp://127.0.0.1:{port}")
        operator.send(b"let me in")
        node.send(b"after")  # the accepted connection still works, and is all that arrives
        assert server.poll(5000)
        assert server.recv_multipart()[-1] == b"after"
        assert not server.poll(300)
    finally:
        for sock in sockets:
            sock.close(0)
        _curve.stop_authenticator()
        ctx.term()
