"""Who a connection is: the role and name of the CURVE key it authenticated with.

Roles (the folder of the public key under ``authorized/``):

* ``operator`` -- the CLI: start, stop, list, logs, destroy.
* ``daemon`` -- a machine's daemon: registers its machine, reports its nodes; the nodes it
  spawns run with its key too (same machine, same user).
* ``node`` -- a node started by hand (an edge device, ``path: dynamic``): registers as the
  node its key is named after, publishes its outputs, subscribes to its inputs.

A key directly in ``authorized/`` (``dora-zmq keys --client``) has every role, as all keys had
before roles existed. Without CURVE there are no keys: every connection has every role, and
only the per-connection checks (a daemon's reports come from its registered connection, a
node's from its own sockets) apply.

The authenticator answers each CURVE handshake with a user id ``role:name``; ZeroMQ attaches
it to every message of that connection (``User-Id``), which is how a handler knows who sent a
message -- from the connection, never from the message's content.
"""

from __future__ import annotations

import enum
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ALL_ROLES", "KeyTable", "Peer", "Plane", "Role", "TRUSTED", "peer_of"]

log = logging.getLogger(__name__)


class Role(enum.Enum):
    """What a key may do."""

    OPERATOR = "operator"
    DAEMON = "daemon"
    NODE = "node"


ALL_ROLES = frozenset(Role)
_ANY = "client"  # the user-id prefix of a key with every role


class Plane(enum.Enum):
    """Which sockets a listening socket serves (its ZAP domain)."""

    CONTROL = "control"  # coordinator and daemon ROUTERs: every role may connect
    DATA = "data"  # node publishers and relays: daemons (their nodes) and nodes only


_PLANE_ROLES = {Plane.CONTROL: ALL_ROLES, Plane.DATA: frozenset({Role.DAEMON, Role.NODE})}


@dataclass(frozen=True, slots=True)
class Peer:
    """The authenticated sender of a message: its key's roles and name ("" without CURVE)."""

    roles: frozenset[Role]
    name: str = ""

    def may(self, role: Role) -> bool:
        """True if this connection has ``role``."""
        return role in self.roles

    def describe(self) -> str:
        """For messages: ``a node key 'cam'``, ``an any-role key 'x'`` or ``no key (no CURVE)``."""
        if not self.name:
            return "no key (no CURVE)"
        kinds = "/".join(sorted(r.value for r in self.roles)) if self.roles != ALL_ROLES else "any-role"
        article = "an" if kinds[:1] in "aeiou" else "a"
        return f"{article} {kinds} key '{self.name}'"


#: Without CURVE: no key, every role.
TRUSTED = Peer(ALL_ROLES)


def peer_of(user_id: str) -> Peer:
    """The :class:`Peer` a ZAP user id (``role:name``) stands for; "" (no CURVE) is trusted."""
    if not user_id:
        return TRUSTED
    prefix, _, name = user_id.partition(":")
    if prefix == _ANY:
        return Peer(ALL_ROLES, name)
    try:
        return Peer(frozenset({Role(prefix)}), name)
    except ValueError:
        return Peer(frozenset(), user_id)  # not ours: no rights


class KeyTable:
    """The authorised public keys by z85 text, read again whenever ``authorized/`` changes.

    Called from the ZAP thread only (one lookup per CURVE handshake); the lock makes a reload
    safe if another authenticator thread ever shares the table.
    """

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._lock = threading.Lock()
        self._stamp: tuple[tuple[str, int], ...] = ()
        self._keys: dict[bytes, str] = {}

    def user_id(self, z85_key: bytes) -> str | None:
        """``role:name`` for an authorised key, None for any other."""
        with self._lock:
            stamp = self._scan_stamp()
            if stamp != self._stamp:
                self._keys = self._load()
                self._stamp = stamp
                log.info("CURVE: %d authorised key(s) in %s", len(self._keys), self._folder)
            return self._keys.get(z85_key)

    def allows(self, plane: Plane, z85_key: bytes) -> bool:
        """True if the key may connect to a socket of ``plane``."""
        user = self.user_id(z85_key)
        return user is not None and bool(peer_of(user).roles & _PLANE_ROLES[plane])

    def _scan_stamp(self) -> tuple[tuple[str, int], ...]:
        # Every key file with its inode and mtime: a folder's mtime alone can miss a change
        # made within the same clock tick as the last one (timestamps are coarse).
        stamp = []
        for folder in (self._folder, *(self._folder / r.value for r in Role)):
            if folder.is_dir():
                for path in sorted(folder.glob("*.key")):
                    try:
                        st = path.stat()
                    except OSError:  # removed meanwhile
                        continue
                    stamp.append((str(path), st.st_ino ^ st.st_mtime_ns ^ st.st_size))
        return tuple(stamp)

    def _load(self) -> dict[bytes, str]:
        from zmq.auth import load_certificate

        keys: dict[bytes, str] = {}
        sources = [(self._folder, _ANY), *((self._folder / r.value, r.value) for r in Role)]
        for folder, prefix in sources:
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob("*.key")):
                try:
                    public, _ = load_certificate(path)
                except (OSError, ValueError) as exc:
                    log.warning("CURVE: skipping unreadable key %s: %s", path, exc)
                    continue
                keys[public] = f"{prefix}:{path.stem}"
        return keys
