"""Operators: ``class Operator`` files hosted in a runtime node (dora's operator API)."""

from __future__ import annotations

from ._loader import OperatorLoadError
from ._runtime import OperatorFailed, OperatorRuntime, run_runtime
from ._status import DoraStatus

__all__ = ["DoraStatus", "OperatorFailed", "OperatorLoadError", "OperatorRuntime", "run_runtime"]
