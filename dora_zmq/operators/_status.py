"""``DoraStatus``: what an operator's ``on_event``/``on_input`` returns."""

from __future__ import annotations

import enum

__all__ = ["DoraStatus"]


class DoraStatus(enum.IntEnum):
    """CONTINUE (0): keep going; STOP (1): this operator is done; STOP_ALL (2): stop the dataflow."""

    CONTINUE = 0
    STOP = 1
    STOP_ALL = 2
