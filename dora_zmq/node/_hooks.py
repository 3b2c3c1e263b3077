"""Process-wide hooks of a node: close every node at exit, remember an uncaught crash, and
show a ``NodeConfigError`` (a script run by hand) as its message only.

Owner: the module (process-wide state, set on the thread that creates a ``Node``).
"""

from __future__ import annotations

import atexit
import logging
import sys
import traceback
import weakref
from typing import Any, Protocol

from .._errors import NodeConfigError

__all__ = ["install_config_error_hook", "install_exit_hooks", "last_crash"]

log = logging.getLogger(__name__)


class _Closable(Protocol):
    @property
    def id(self) -> str: ...

    def close(self, error: str | None = None) -> None: ...


_crash: list[str] = []  # uncaught exceptions of the main thread, as one line each


def last_crash() -> str:
    """The last uncaught exception recorded (``""`` if none): a node closing fails with it."""
    return _crash[-1] if _crash else ""


def _record_crash(exc_type: Any, exc: Any, tb: Any) -> None:
    _crash.append("".join(traceback.format_exception_only(exc_type, exc)).strip())
    _previous_hook(exc_type, exc, tb)


_previous_hook = sys.excepthook


def _config_error_hook(exc_type: Any, exc: Any, tb: Any) -> None:
    """An uncaught NodeConfigError (a script run by hand) shows its message only, no stack:
    the message says how to run the node, a traceback into dora_zmq would only hide that."""
    if isinstance(exc, NodeConfigError):
        exc.__cause__ = None
        exc.__suppress_context__ = True
        tb = None
        exc.__traceback__ = None  # the default hook reads it from the exception too
    _hook_before_config(exc_type, exc, tb)


_hook_before_config = sys.excepthook


def install_config_error_hook() -> None:
    """Show an uncaught NodeConfigError as its message (installed once)."""
    global _hook_before_config
    if sys.excepthook is not _config_error_hook and sys.excepthook is not _record_crash:
        _hook_before_config = sys.excepthook
        sys.excepthook = _config_error_hook


_live_nodes: "weakref.WeakSet[_Closable]" = weakref.WeakSet()


def install_exit_hooks(node: _Closable) -> None:
    """Close ``node`` at exit, and record an uncaught exception for its ``close``."""
    global _previous_hook
    if not _live_nodes:
        atexit.register(_close_all)
        if sys.excepthook is not _record_crash:
            _previous_hook = sys.excepthook
            sys.excepthook = _record_crash
    _live_nodes.add(node)


def _close_all() -> None:
    for node in list(_live_nodes):
        try:
            node.close()
        except Exception:  # noqa: BLE001 - at exit, report and go on closing the others
            log.exception("error while closing node %s at exit", node.id)
