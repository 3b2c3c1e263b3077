"""Export a recording to MCAP, the log format robotics tools exchange (Foxglove, ROS 2 bags).

Needs the optional ``mcap`` package (``pip install 'dora_zmq[mcap]'``). Each output becomes a
channel (topic ``/node/output``) with JSON messages ``{"seq", "metadata", "value"}`` and a JSON
schema naming the Arrow type, so any MCAP viewer shows them as they are; binary values are
base64 strings. ``log_time`` is the recorder's receive time, ``publish_time`` the send time.
The dataflow descriptor travels as an MCAP metadata record (``dora_zmq.dataflow``).
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa

from .._errors import RecordingError
from ._reader import Recording

__all__ = ["export_mcap"]

log = logging.getLogger(__name__)


def export_mcap(recording: Recording, out: Path, allow_truncated: bool = False) -> int:
    """Write ``recording`` to the MCAP file ``out``; returns the number of messages written.

    Raises:
        RecordingError: ``mcap`` is not installed, the recording is damaged, or ``out`` cannot
            be written.
    """
    try:
        from mcap.writer import Writer
    except ImportError:
        raise RecordingError("MCAP export needs the optional `mcap` package: pip install 'dora_zmq[mcap]'") from None
    manifest = recording.manifest
    count = 0
    try:
        with open(out, "wb") as f:
            writer = Writer(f)
            writer.start(profile="", library="dora-zmq")
            channels: dict[str, int] = {}
            for o in manifest.outputs:
                schema = writer.register_schema(
                    name=f"dora_zmq.{o.value_type}",
                    encoding="jsonschema",
                    data=json.dumps(_json_schema(o.value_type)).encode(),
                )
                channels[o.topic] = writer.register_channel(
                    topic="/" + o.topic,
                    message_encoding="json",
                    schema_id=schema,
                    metadata={"dora_zmq.node": o.node, "dora_zmq.output": o.output, "arrow_type": o.value_type},
                )
            for message in recording.messages(allow_truncated=allow_truncated):
                body = {"seq": message.seq, "metadata": message.metadata, "value": _plain(message.value)}
                writer.add_message(
                    channel_id=channels[message.topic],
                    log_time=message.received_ns,
                    publish_time=message.sent_ns,
                    data=json.dumps(body, default=str).encode(),
                    sequence=message.seq & 0xFFFFFFFF,
                )
                count += 1
            writer.add_metadata(
                "dora_zmq.dataflow",
                {
                    "name": manifest.dataflow_name,
                    "id": manifest.dataflow_id,
                    "descriptor": manifest.descriptor,
                    "started_at": manifest.started_at,
                },
            )
            writer.finish()  # type: ignore[no-untyped-call]
    except OSError as exc:
        raise RecordingError(f"cannot write '{out}': {exc}") from exc
    return count


def _json_schema(arrow_type: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"a dora_zmq message; value is an Arrow array of {arrow_type}",
        "properties": {
            "seq": {"type": "integer"},
            "metadata": {"type": "object"},
            "value": {"type": "array"},
        },
    }


def _plain(value: pa.Array) -> list[Any]:
    return [_jsonable(v) for v in value.to_pylist()]


def _jsonable(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(v).decode("ascii")
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return v
