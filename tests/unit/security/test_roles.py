"""The authorised-keys table: roles from folders, planes, and revocation without a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from zmq.auth import load_certificate

from dora_zmq.security import ALL_ROLES, TRUSTED, KeyTable, Plane, Role, generate_keys, peer_of

pytestmark = pytest.mark.timeout(30)


def _public(path: Path) -> bytes:
    return load_certificate(path)[0]


def test_roles_planes_and_revocation(tmp_path: Path) -> None:
    generate_keys(tmp_path, ["old"], {Role.OPERATOR: ["laptop"], Role.DAEMON: ["cam"], Role.NODE: ["edge"]})
    table = KeyTable(tmp_path / "authorized")
    laptop, cam = _public(tmp_path / "clients/operator/laptop.key"), _public(tmp_path / "clients/daemon/cam.key")
    edge, old = _public(tmp_path / "clients/node/edge.key"), _public(tmp_path / "clients/old.key")
    assert table.user_id(laptop) == "operator:laptop"
    assert table.user_id(edge) == "node:edge"
    assert peer_of(table.user_id(old) or "").roles == ALL_ROLES
    # Operators talk to the control plane only; daemons' nodes and edge nodes publish and subscribe.
    assert table.allows(Plane.CONTROL, laptop) and not table.allows(Plane.DATA, laptop)
    assert table.allows(Plane.DATA, cam) and table.allows(Plane.DATA, edge) and table.allows(Plane.DATA, old)

    (tmp_path / "authorized/node/edge.key").unlink()  # revoked: read again, no restart
    assert table.user_id(edge) is None and not table.allows(Plane.CONTROL, edge)
    assert table.user_id(laptop) == "operator:laptop"


def test_user_ids_map_to_peers() -> None:
    assert peer_of("") is TRUSTED  # no CURVE: every role
    assert peer_of("node:edge").roles == {Role.NODE} and peer_of("node:edge").name == "edge"
    assert peer_of("revoked:").roles == frozenset()
    assert peer_of("something-else").roles == frozenset()


def test_a_folder_made_before_data_key_is_not_split_by_adding_keys(tmp_path: Path) -> None:
    import zmq.auth

    zmq.auth.create_certificates(tmp_path, "server")  # an older folder: no data.key
    written = generate_keys(tmp_path, [], {Role.NODE: ["edge"]})
    assert not (tmp_path / "data.key").exists(), written  # its other copies would disagree
    assert (tmp_path / "authorized/node/edge.key").is_file()
