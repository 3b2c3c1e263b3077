"""CURVE key files: generating a deployment's keys and finding them at run time.

A keys folder, made by ``dora-zmq keys DIR --operator NAME --daemon NAME --node NAME``, holds::

    DIR/server.key, DIR/server.key_secret   control plane: the key the coordinator's and the
                                            daemons' listening sockets serve with
    DIR/data.key, DIR/data.key_secret       data plane: the key every publishing node serves with
    DIR/clients/<role>/<name>.key(_secret)  one pair per operator (CLI), daemon (machine) or node
    DIR/authorized/<role>/<name>.key        the public keys allowed to connect, by role
    DIR/clients/<name>.key(_secret)         ``--client NAME``: a key with every role (older folders)
    DIR/authorized/<name>.key

The role is the folder a public key sits in under ``authorized/``; it decides what a
connection may do (see :mod:`dora_zmq.security._roles`). Secrets are written 0600 in 0700
folders. With ``DORA_ZMQ_KEYS=DIR`` set, every socket dora_zmq opens uses CURVE: listening
sockets check the connecting key against ``authorized/``, read again whenever it changes
(a key removed there cannot open a new connection; connections already open stay until they
close). A folder without ``data.key`` (made before it existed) serves the data plane with
``server.key``; re-running ``dora-zmq keys`` on it does not add one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import zmq

from .._errors import DoraZmqError
from ._roles import Role

__all__ = ["ENV_CLIENT", "ENV_KEYS", "KeyConfig", "SecurityError", "generate_keys", "key_config"]

ENV_KEYS = "DORA_ZMQ_KEYS"
ENV_CLIENT = "DORA_ZMQ_CLIENT_KEY"


class SecurityError(DoraZmqError):
    """CURVE keys are configured wrongly (missing files, no CURVE support)."""


@dataclass(frozen=True, slots=True)
class KeyConfig:
    """Loaded keys: the server pairs of both planes, this process's client pair, the authorised keys."""

    server_public: bytes
    server_secret: bytes | None
    client_public: bytes
    client_secret: bytes
    authorized: Path
    data_public: bytes = b""
    data_secret: bytes | None = None


def generate_keys(directory: Path, clients: list[str], roles: dict[Role, list[str]] | None = None) -> list[Path]:
    """Create the server pairs and the client pairs asked for; returns the files written.

    Args:
        directory: the keys folder (created 0700).
        clients: names of keys with every role (``--client``; "default" if nothing is asked).
        roles: names of keys per role (``--operator``, ``--daemon``, ``--node``).

    Existing pairs are kept (re-running adds keys without invalidating old ones); permissions
    are set again on every run: folders 0700, secret keys 0600.
    """
    import shutil

    from zmq.auth import create_certificates  # zmq.auth: only where keys are made or read

    if not zmq.has("curve"):
        raise SecurityError("this libzmq has no CURVE support; install pyzmq from PyPI (its wheels have it)")
    roles = {role: names for role, names in (roles or {}).items() if names}
    if not clients and not roles:
        clients = ["default"]
    written: list[Path] = []
    _private_dir(directory)
    for sub in ("clients", "authorized"):
        _private_dir(directory / sub)
    # A folder made before the data plane had its own key keeps serving it with server.key:
    # adding data.key to one copy would split a deployment whose other copies lack it.
    fresh = not (directory / "server.key_secret").exists()
    for name in ("server", "data") if fresh else ("server",):
        if not (directory / f"{name}.key_secret").exists():
            create_certificates(directory, name)
            written += [directory / f"{name}.key", directory / f"{name}.key_secret"]
    wanted = [(directory / "clients", directory / "authorized", name) for name in clients]
    for role, names in roles.items():
        _private_dir(directory / "clients" / role.value)
        _private_dir(directory / "authorized" / role.value)
        wanted += [(directory / "clients" / role.value, directory / "authorized" / role.value, name) for name in names]
    for folder, authorized, name in wanted:
        if "/" in name or name in ("", ".", ".."):
            raise SecurityError(f"invalid key name {name!r}")
        if not (folder / f"{name}.key_secret").exists():
            public, secret = create_certificates(folder, name)
            written += [Path(public), Path(secret)]
        shutil.copy(folder / f"{name}.key", authorized / f"{name}.key")
    for secret_file in directory.rglob("*.key_secret"):
        os.chmod(secret_file, 0o600)
    return written


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def key_config(env: dict[str, str] | None = None) -> KeyConfig | None:
    """The keys named by ``DORA_ZMQ_KEYS`` (and ``DORA_ZMQ_CLIENT_KEY``), or None if unset.

    Raises:
        SecurityError: the folder or a needed key file is missing.
    """
    env = dict(os.environ) if env is None else env
    folder = env.get(ENV_KEYS)
    if not folder:
        return None
    from zmq.auth import load_certificate  # zmq.auth: only where keys are made or read

    base = Path(folder)
    if not (base / "server.key").is_file():
        raise SecurityError(
            f"{ENV_KEYS}={folder}: no server.key there; create the folder with `dora-zmq keys {folder}`"
        )
    server_public, server_secret = _load_pair(base, "server")
    data_public, data_secret = (
        _load_pair(base, "data") if (base / "data.key").is_file() else (server_public, server_secret)
    )
    client_file = Path(env.get(ENV_CLIENT) or base / "clients" / "default.key_secret")
    if not client_file.is_file():
        raise SecurityError(f"client key {client_file} not found; set {ENV_CLIENT} to this machine's .key_secret file")
    client_public, client_secret = load_certificate(client_file)
    if client_secret is None:
        raise SecurityError(f"{client_file} holds no secret key; use the .key_secret file")
    return KeyConfig(
        server_public, server_secret, client_public, client_secret, base / "authorized", data_public, data_secret
    )


def _load_pair(base: Path, name: str) -> tuple[bytes, bytes | None]:
    from zmq.auth import load_certificate

    secret_file = base / f"{name}.key_secret"
    return load_certificate(secret_file if secret_file.is_file() else base / f"{name}.key")
