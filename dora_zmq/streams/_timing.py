"""Timing metainfo: every result a gizmo sends is stamped with the gizmo's name and the time.

``Gizmo.send_result()`` appends ``{"gizmo": name, "timestamp": time.time()}`` under the tag
``tag_timing`` to the result's ``StreamMeta`` (the names are DeGirum's, so code reading them
ports unchanged); ``get_timing_info()`` reads the stamps back.
"""

from __future__ import annotations

from typing import Any, Final

from ._meta import StreamData

__all__ = ["KEY_GIZMO", "KEY_TIMESTAMP", "get_timing_info", "tag_timing"]

tag_timing: Final = "dgt_timing"
"""The tag of the timing entries."""
KEY_GIZMO: Final = "gizmo"
"""Key of the sending gizmo's name in a timing entry."""
KEY_TIMESTAMP: Final = "timestamp"
"""Key of the send time (``time.time()``, seconds) in a timing entry."""


def get_timing_info(data: StreamData) -> list[tuple[str, float]]:
    """List the timing stamps of a data element, oldest first.

    Args:
        data: the element whose ``meta`` to read.

    Returns:
        One ``(gizmo name, timestamp)`` pair per stamp; empty when there is none.
    """
    stamps: list[Any] = data.meta.find(tag_timing)
    return [(entry.get(KEY_GIZMO, ""), entry.get(KEY_TIMESTAMP, 0.0)) for entry in stamps if isinstance(entry, dict)]
