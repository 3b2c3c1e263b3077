"""Applying CURVE to sockets, and the per-process authenticator (a ZAP handler thread)."""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from ._keys import KeyConfig, SecurityError, key_config
from ._roles import KeyTable, Plane

__all__ = ["secure_client", "secure_server", "security_enabled", "stop_authenticator"]

log = logging.getLogger(__name__)

_lock = threading.Lock()
_auth: ThreadAuthenticator | None = None
_loaded = False
_config: KeyConfig | None = None


def _keys() -> KeyConfig | None:
    global _loaded, _config
    if not _loaded:
        _config = key_config()
        _loaded = True
    return _config


def security_enabled() -> bool:
    """True when ``DORA_ZMQ_KEYS`` is set (every socket is then CURVE)."""
    return _keys() is not None


def secure_server(sock: zmq.Socket[Any], plane: Plane = Plane.CONTROL) -> None:
    """Make a listening socket a CURVE server that accepts only authorised client keys.

    Args:
        plane: ``CONTROL`` sockets serve with ``server.key`` and admit every role;
            ``DATA`` sockets (publishers, relays) serve with ``data.key`` and admit daemon
            and node keys only.
    """
    keys = _keys()
    if keys is None:
        return
    public, secret, name = (
        (keys.server_public, keys.server_secret, "server") if plane is Plane.CONTROL else (keys.data_public, keys.data_secret, "data")
    )
    if secret is None:
        raise SecurityError(f"this process listens for {plane.value}-plane connections, so it needs {name}.key_secret in the keys folder")
    _ensure_authenticator(sock.context, keys)
    sock.zap_domain = plane.value.encode()
    sock.curve_server = True
    sock.curve_publickey = public
    sock.curve_secretkey = secret


def secure_client(sock: zmq.Socket[Any], plane: Plane = Plane.CONTROL) -> None:
    """Make a connecting socket a CURVE client of the plane's server key."""
    keys = _keys()
    if keys is None:
        return
    sock.curve_serverkey = keys.server_public if plane is Plane.CONTROL else keys.data_public
    sock.curve_publickey = keys.client_public
    sock.curve_secretkey = keys.client_secret


class _RoleAuthenticator(ThreadAuthenticator):
    """pyzmq's ZAP thread, with keys looked up in a :class:`KeyTable` and ``role:name`` user ids."""

    def __init__(self, ctx: zmq.Context[Any], table: KeyTable) -> None:
        super().__init__(ctx, log=logging.getLogger("dora_zmq.security.zap"))
        self.table = table

    def curve_user_id(self, client_public_key: bytes) -> str:
        # A key removed between the check and this call gets a user id with no rights.
        return self.table.user_id(z85.encode(client_public_key)) or "revoked:"


class _PlaneCredentials:
    """The ZAP callback: is this key authorised, with a role that may use this plane?"""

    def __init__(self, table: KeyTable) -> None:
        self._table = table

    def callback(self, domain: str, key: bytes) -> bool:
        try:
            plane = Plane(domain)
        except ValueError:
            return False
        allowed = self._table.allows(plane, key)
        if not allowed:
            log.info("CURVE: refused key %s on the %s plane", key.decode(errors="replace"), plane.value)
        return allowed


def _ensure_authenticator(ctx: zmq.Context[Any], keys: KeyConfig) -> None:
    global _auth
    with _lock:
        if _auth is not None:
            return
        table = KeyTable(keys.authorized)
        auth = _RoleAuthenticator(ctx, table)
        auth.start()
        credentials = _PlaneCredentials(table)
        for plane in Plane:
            auth.configure_curve_callback(domain=plane.value, credentials_provider=credentials)
        _auth = auth
        atexit.register(stop_authenticator)
        log.info("CURVE authentication on; authorised keys from %s", keys.authorized)


def stop_authenticator() -> None:
    """Stop the ZAP thread (at exit)."""
    global _auth
    with _lock:
        if _auth is not None:
            _auth.stop()
            _auth = None
