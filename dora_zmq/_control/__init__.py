"""Control plane: every message between CLI, coordinator, daemons and nodes, and their codec.

Files are named by direction (``cli_to_coordinator``, ``daemon_to_node``...) so both ends of
a message import the same definition; ``contract`` holds what is not a message (the
environment a daemon gives its nodes, STOP reasons). The data plane lives in ``dora_zmq._wire``.
"""

from __future__ import annotations

from ._codec import PROTOCOL_VERSION, decode, encode
from .cli_to_coordinator import *  # noqa: F403
from .cli_to_coordinator import __all__ as _cli
from .contract import *  # noqa: F403
from .contract import __all__ as _contract
from .coordinator_to_cli import *  # noqa: F403
from .coordinator_to_cli import __all__ as _to_cli
from .coordinator_to_daemon import *  # noqa: F403
from .coordinator_to_daemon import __all__ as _to_daemon
from .daemon_to_coordinator import *  # noqa: F403
from .daemon_to_coordinator import __all__ as _to_coord
from .daemon_to_node import *  # noqa: F403
from .daemon_to_node import __all__ as _to_node
from .node_to_daemon import *  # noqa: F403
from .node_to_daemon import __all__ as _from_node
from .records import *  # noqa: F403
from .records import __all__ as _records

__all__ = [
    "PROTOCOL_VERSION",
    "decode",
    "encode",
    *_contract,
    *_cli,
    *_to_cli,
    *_to_daemon,
    *_to_coord,
    *_to_node,
    *_from_node,
    *_records,
]
