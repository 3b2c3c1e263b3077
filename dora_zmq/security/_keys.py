"""CURVE key files: generating a deployment's keys and finding them at run time.

A keys folder, made by ``dora-zmq keys DIR``, holds::

    DIR/server.key, DIR/server.key_secret     the key every listening socket serves with
    DIR/clients/<name>.key(_secret)           one key pair per client (machine, CLI, edge node)
    DIR/authorized/<name>.key                 the public keys allowed to connect

Copy the folder to each machine (a client only needs ``server.key`` and its own pair). With
``DORA_ZMQ_KEYS=DIR`` set, every socket dora_zmq opens uses CURVE: listening sockets check the
connecting key against ``authorized/``; a peer without an authorised key gets nothing.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

from .._errors import DoraZmqError

__all__ = ["ENV_CLIENT", "ENV_KEYS", "KeyConfig", "SecurityError", "generate_keys", "key_config"]

ENV_KEYS = "DORA_ZMQ_KEYS"
ENV_CLIENT = "DORA_ZMQ_CLIENT_KEY"


class SecurityError(DoraZmqError):
    """CURVE keys are configured wrongly (missing files, no CURVE support)."""


@dataclass(frozen=True, slots=True)
class KeyConfig:
    """Loaded keys: the server pair, this process's client pair, the authorised-keys folder."""

    server_public: bytes
    server_secret: bytes | None
    client_public: bytes
    client_secret: bytes
    authorized: Path


def generate_keys(directory: Path, clients: list[str]) -> list[Path]:
    """Create the server pair and one client pair per name; returns the files written.

    Existing files are kept (re-running adds new clients without invalidating old keys).
    """
    if not zmq.has("curve"):
        raise SecurityError("this libzmq has no CURVE support; install pyzmq from PyPI (its wheels have it)")
    written = []
    directory.mkdir(parents=True, exist_ok=True)
    for sub in ("clients", "authorized"):
        (directory / sub).mkdir(exist_ok=True)
    if not (directory / "server.key_secret").exists():
        zmq.auth.create_certificates(directory, "server")
        written += [directory / "server.key", directory / "server.key_secret"]
    for name in clients or ["default"]:
        if not (directory / "clients" / f"{name}.key_secret").exists():
            public, secret = zmq.auth.create_certificates(directory / "clients", name)
            written += [Path(public), Path(secret)]
        shutil.copy(directory / "clients" / f"{name}.key", directory / "authorized" / f"{name}.key")
    os.chmod(directory / "server.key_secret", 0o600)
    return written


def key_config(env: dict[str, str] | None = None) -> KeyConfig | None:
    """The keys named by ``DORA_ZMQ_KEYS`` (and ``DORA_ZMQ_CLIENT_KEY``), or None if unset.

    Raises:
        SecurityError: the folder or a needed key file is missing.
    """
    env = dict(os.environ) if env is None else env
    folder = env.get(ENV_KEYS)
    if not folder:
        return None
    base = Path(folder)
    if not (base / "server.key").is_file():
        raise SecurityError(f"{ENV_KEYS}={folder}: no server.key there; create the folder with `dora-zmq keys {folder}`")
    server_public, server_secret = zmq.auth.load_certificate(base / "server.key_secret") if (base / "server.key_secret").is_file() else (
        zmq.auth.load_certificate(base / "server.key")
    )
    client_file = Path(env.get(ENV_CLIENT) or base / "clients" / "default.key_secret")
    if not client_file.is_file():
        raise SecurityError(f"client key {client_file} not found; set {ENV_CLIENT} to this machine's .key_secret file")
    client_public, client_secret = zmq.auth.load_certificate(client_file)
    if client_secret is None:
        raise SecurityError(f"{client_file} holds no secret key; use the .key_secret file")
    return KeyConfig(server_public, server_secret, client_public, client_secret, base / "authorized")
