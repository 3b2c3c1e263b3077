"""Security: CURVE keys for every socket that crosses hosts, and who may connect."""

from __future__ import annotations

from ._curve import secure_client, secure_server, security_enabled, stop_authenticator
from ._keys import ENV_CLIENT, ENV_KEYS, KeyConfig, SecurityError, generate_keys, key_config

__all__ = [
    "ENV_CLIENT",
    "ENV_KEYS",
    "KeyConfig",
    "SecurityError",
    "generate_keys",
    "key_config",
    "secure_client",
    "secure_server",
    "security_enabled",
    "stop_authenticator",
]
