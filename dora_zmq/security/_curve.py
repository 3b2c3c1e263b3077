"""Applying CURVE to sockets, and the per-process authenticator (a ZAP handler thread)."""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator

from ._keys import KeyConfig, SecurityError, key_config

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


def secure_server(sock: zmq.Socket[Any]) -> None:
    """Make a listening socket a CURVE server that accepts only authorised client keys."""
    keys = _keys()
    if keys is None:
        return
    if keys.server_secret is None:
        raise SecurityError("this machine listens for connections, so it needs server.key_secret in the keys folder")
    _ensure_authenticator(sock.context, keys)
    sock.curve_server = True
    sock.curve_publickey = keys.server_public
    sock.curve_secretkey = keys.server_secret


def secure_client(sock: zmq.Socket[Any]) -> None:
    """Make a connecting socket a CURVE client of the deployment's server key."""
    keys = _keys()
    if keys is None:
        return
    sock.curve_serverkey = keys.server_public
    sock.curve_publickey = keys.client_public
    sock.curve_secretkey = keys.client_secret


def _ensure_authenticator(ctx: zmq.Context[Any], keys: KeyConfig) -> None:
    global _auth
    with _lock:
        if _auth is not None:
            return
        auth = ThreadAuthenticator(ctx, log=logging.getLogger("dora_zmq.security.zap"))
        auth.start()
        auth.configure_curve(domain="*", location=str(keys.authorized))
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
