"""The ZAP handler: pyzmq's authenticator thread with role-aware key checks.

Its own module because ``zmq.auth.thread`` imports asyncio: ``_curve`` imports this one only
when a process starts serving CURVE. Threading: the authenticator runs in pyzmq's ZAP thread;
its :class:`KeyTable` is the one piece of state it shares (which locks it).
"""

from __future__ import annotations

import logging
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from ._roles import KeyTable, Plane

__all__ = ["PlaneCredentials", "RoleAuthenticator"]

log = logging.getLogger("dora_zmq.security._curve")  # the name the refusals were always logged under


class RoleAuthenticator(ThreadAuthenticator):
    """pyzmq's ZAP thread, with keys looked up in a :class:`KeyTable` and ``role:name`` user ids."""

    def __init__(self, ctx: zmq.Context[Any], table: KeyTable) -> None:
        super().__init__(ctx, log=logging.getLogger("dora_zmq.security.zap"))
        self.table = table

    def curve_user_id(self, client_public_key: bytes) -> str:
        # A key removed between the check and this call gets a user id with no rights.
        return self.table.user_id(z85.encode(client_public_key)) or "revoked:"


class PlaneCredentials:
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
