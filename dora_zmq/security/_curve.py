"""Applying CURVE to sockets, and the per-process authenticator (a ZAP handler thread).

The authenticator (``_zap``: pyzmq's ``zmq.auth.thread``, which pulls in asyncio) is imported
only when a process first serves CURVE, so a process without keys never loads it.
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import TYPE_CHECKING, Any

import zmq

from ._keys import KeyConfig, SecurityError, key_config
from ._roles import KeyTable, Plane

if TYPE_CHECKING:
    from zmq.auth.thread import ThreadAuthenticator

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
        (keys.server_public, keys.server_secret, "server")
        if plane is Plane.CONTROL
        else (keys.data_public, keys.data_secret, "data")
    )
    if secret is None:
        raise SecurityError(
            f"this process listens for {plane.value}-plane connections,"
            f" so it needs {name}.key_secret in the keys folder"
        )
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


def _ensure_authenticator(ctx: zmq.Context[Any], keys: KeyConfig) -> None:
    global _auth
    with _lock:
        if _auth is not None:
            return
        from ._zap import PlaneCredentials, RoleAuthenticator

        table = KeyTable(keys.authorized)
        auth = RoleAuthenticator(ctx, table)
        auth.start()
        credentials = PlaneCredentials(table)
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
