"""Gizmos that bridge a dora node and a composition (the only streams module that knows nodes).

* :class:`NodeSourceGizmo` yields a node's INPUT events as ``StreamData(value, meta)``.
* :class:`NodeSinkGizmo` sends each result to one of the node's outputs.

``StreamMeta`` crosses processes inside the message metadata under ``stream_meta`` (the
JSON-able entries, see ``StreamMeta.to_records``), so a gizmo in a downstream node can
``find_last("Resize")`` what a gizmo in an upstream node appended. The dora metadata of the
input an item came from (with its ``open_telemetry_context``) rides along under the tag
``dora.metadata`` and is reused when the result is sent, so traces continue through
compositions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from ..node import Node
from ._gizmo import Gizmo, InputSpec
from ._meta import StreamData, StreamMeta

__all__ = ["DORA_INPUT_TAG", "DORA_METADATA_TAG", "STREAM_META_KEY", "NodeSinkGizmo", "NodeSourceGizmo"]

log = logging.getLogger(__name__)

STREAM_META_KEY = "stream_meta"
#: Tag of the dora metadata dict of the input an item came from.
DORA_METADATA_TAG = "dora.metadata"
#: Tag of the input id an item came from.
DORA_INPUT_TAG = "dora.input"
_POLL_S = 0.1


class NodeSourceGizmo(Gizmo):
    """Feeds a node's inputs into a composition; ends when they close or the node stops.

    Args:
        node: the node to read; this gizmo becomes its only reader (``next()`` runs in the
            gizmo's thread).
        inputs: one input id, several, or None for every input of the node.
        name: the gizmo's name (default: the class name).
    """

    def __init__(self, node: Node, inputs: str | Sequence[str] | None = None, name: str | None = None) -> None:
        super().__init__()
        self.node = node
        self.inputs = {inputs} if isinstance(inputs, str) else set(inputs) if inputs is not None else None
        if name:
            self.name = name

    def run(self) -> None:
        """Read events until the selected inputs close, STOP arrives, or the gizmo is aborted."""
        open_inputs = set(self.inputs) if self.inputs is not None else None
        while not self._abort:
            event = self.node.next(timeout=_POLL_S)
            if event is None:
                if self.node.finished:
                    return
                continue
            etype = event["type"]
            if etype == "STOP":
                return
            if etype == "INPUT_CLOSED" and open_inputs is not None:
                open_inputs.discard(event["id"])
                if not open_inputs:
                    return
            if etype == "INPUT" and (self.inputs is None or event["id"] in self.inputs):
                self.send_result(self._to_stream_data(event))

    @staticmethod
    def _to_stream_data(event: dict[str, Any]) -> StreamData:
        metadata = dict(event.get("metadata") or {})
        records = metadata.pop(STREAM_META_KEY, None)
        try:
            meta = StreamMeta.from_records(records) if isinstance(records, list) else StreamMeta()
        except Exception:  # noqa: BLE001 - a bad record from another node must not stop the pipeline
            log.warning("input %s: ignoring malformed %s metadata", event.get("id"), STREAM_META_KEY)
            meta = StreamMeta()
        meta.append(event["id"], DORA_INPUT_TAG)
        meta.append(metadata, DORA_METADATA_TAG)
        return StreamData(event["value"], meta)


class NodeSinkGizmo(Gizmo):
    """Sends every item it receives to one node output.

    ``item.data`` may be bytes, a ``pyarrow.Array``, a NumPy array (flattened) or a list.
    The item's ``StreamMeta`` goes along as ``metadata["stream_meta"]``.

    Args:
        node: the node to send with.
        output_id: one of the node's declared outputs.
        input_stream_sizes: the single input's ``(maxsize, allow_drop)``.
        name: the gizmo's name (default: the class name).
    """

    def __init__(
        self,
        node: Node,
        output_id: str,
        input_stream_sizes: Sequence[InputSpec] = ((10, False),),
        name: str | None = None,
    ) -> None:
        super().__init__(input_stream_sizes)
        self.node = node
        self.output_id = output_id
        if name:
            self.name = name

    def run(self) -> None:
        """Send items until the input ends or the gizmo is aborted."""
        for item in self.get_input(0):
            if self._abort:
                break
            data = item.data if isinstance(item, StreamData) else item
            meta = item.meta if isinstance(item, StreamData) else StreamMeta()
            metadata = dict(meta.find_last(DORA_METADATA_TAG) or {})
            metadata[STREAM_META_KEY] = [
                r for r in meta.to_records() if not any(t.startswith("dora.") for t in r["tags"])
            ]
            self.node.send_output(self.output_id, _to_arrow(data), metadata)


def _to_arrow(data: Any) -> Any:
    if isinstance(data, (list, tuple)):
        return pa.array(data)
    return data
