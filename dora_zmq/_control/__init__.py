"""Control plane: every message between CLI, coordinator, daemons and nodes, and their codec.

Files are named by direction (``cli_to_coordinator``, ``daemon_to_node``...) so both ends of
a message import the same definition; ``contract`` holds what is not a message (the
environment a daemon gives its nodes, STOP reasons). The data plane lives in ``dora_zmq._wire``.

The direction modules are loaded when one of their names is first used (PEP 562; ``_index``
says which module defines what): a node process builds the dataclasses of the messages it
exchanges with its daemon, not the 58 of the whole control plane.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names
from ._codec import PROTOCOL_VERSION, decode, encode
from ._index import WHERE
from .contract import *  # noqa: F403
from .contract import __all__ as _contract
from .records import *  # noqa: F403
from .records import __all__ as _records

if TYPE_CHECKING:
    from .cli_to_coordinator import *  # noqa: F403
    from .coordinator_to_cli import *  # noqa: F403
    from .coordinator_to_daemon import *  # noqa: F403
    from .daemon_to_coordinator import *  # noqa: F403
    from .daemon_to_node import *  # noqa: F403
    from .node_to_daemon import *  # noqa: F403

__all__ = ["PROTOCOL_VERSION", "decode", "encode", *_contract, *_records, *WHERE]

__getattr__, __dir__ = lazy_names(__name__, WHERE, __all__)
