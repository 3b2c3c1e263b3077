"""A package's public names loaded from its submodules on first use (PEP 562), written once.

A package lists each name with the submodule that defines it and installs the two functions::

    __getattr__, __dir__ = lazy_names(__name__, {"Node": ".node"}, __all__)

so ``import package`` costs only what it imports itself, and ``package.Node`` imports
``package.node`` the first time it is asked for (then it is an ordinary attribute).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    package: str, where: Mapping[str, str], public: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package`` (called from its body).

    Args:
        where: public name -> the submodule that defines it (relative, e.g. ``"._node"``).
        public: the package's ``__all__`` (what ``dir()`` lists besides what is loaded).
    """
    namespace = sys.modules[package].__dict__  # the package being imported is registered already

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *public})

    return __getattr__, __dir__
