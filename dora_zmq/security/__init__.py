"""Security: CURVE keys for every socket that crosses hosts, who may connect, and with which role."""

from __future__ import annotations

from ._curve import secure_client, secure_server, security_enabled, stop_authenticator
from ._keys import ENV_CLIENT, ENV_KEYS, KeyConfig, SecurityError, generate_keys, key_config
from ._roles import ALL_ROLES, TRUSTED, KeyTable, Peer, Plane, Role, peer_of

__all__ = [
    "ALL_ROLES",
    "ENV_CLIENT",
    "ENV_KEYS",
    "KeyConfig",
    "KeyTable",
    "Peer",
    "Plane",
    "Role",
    "SecurityError",
    "TRUSTED",
    "generate_keys",
    "key_config",
    "peer_of",
    "secure_client",
    "secure_server",
    "security_enabled",
    "stop_authenticator",
]
