"""Loading operator files as real modules (``__file__`` set, their folder importable)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

from .._errors import DoraZmqError

__all__ = ["OperatorLoadError", "load_operator_module"]


class OperatorLoadError(DoraZmqError):
    """An operator file cannot be imported or has no ``Operator`` class."""


def load_operator_module(path: Path, operator_id: str, node_id: str) -> ModuleType:
    """Import ``path`` under a unique module name and check it defines ``class Operator``.

    The file's folder goes first on ``sys.path`` so helpers and data next to it can be
    imported and opened just as when the file is run directly.

    Raises:
        OperatorLoadError: the file is missing, fails to import, or defines no ``Operator``.
    """
    if not path.is_file():
        raise OperatorLoadError(f"operator '{operator_id}' of node '{node_id}': file {path} not found")
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = "dora_operator_" + re.sub(r"\W", "_", f"{node_id}_{operator_id}")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise OperatorLoadError(f"operator '{operator_id}' of node '{node_id}': cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    if not isinstance(getattr(module, "Operator", None), type):
        raise OperatorLoadError(
            f"operator '{operator_id}' of node '{node_id}': {path} defines no `class Operator` "
            "(it needs one with an on_event(self, dora_event, send_output) method)"
        )
    return module
