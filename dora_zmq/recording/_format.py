"""The on-disk contract of a recording folder, defined once for the writer and the reader.

A recording is a folder::

    manifest.json                 what was recorded (the records below, as JSON)
    camera%2Fimage.0.arrow        one Arrow IPC stream per output (and per segment)
    detector%2Fbbox.0.arrow

Each stream holds record batches of :data:`BATCH_FIELDS` plus a ``value`` column of type
``large_list<T>``: one row per message, whose value is the message's Arrow array. An output
whose value type changes starts a new segment (a new file), since a stream has one schema.
File names are the topic percent-encoded, so node ids can never name a path outside the folder.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from .._errors import RecordingError

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "RECORD_PROGRAM",
    "REPLAY_PROGRAM",
    "BATCH_FIELDS",
    "Segment",
    "OutputRecord",
    "Manifest",
    "batch_schema",
    "segment_file_name",
    "read_manifest",
    "write_manifest",
]

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
RECORD_PROGRAM = "dora-zmq-record"
"""The recorder node's program (a console script of this package)."""
REPLAY_PROGRAM = "dora-zmq-replay"
"""The replay node's program (a console script of this package)."""

_TS = pa.timestamp("ns", tz="UTC")
BATCH_FIELDS = (
    pa.field("seq", pa.uint64(), nullable=False),
    pa.field("sent", _TS, nullable=False),  # the sender's wall clock
    pa.field("received", _TS, nullable=False),  # the recorder's wall clock
    pa.field("metadata", pa.string(), nullable=False),  # the message metadata as JSON
)


def batch_schema(topic: str, value_type: pa.DataType) -> pa.Schema:
    """The schema of one output's stream: :data:`BATCH_FIELDS` + ``value: large_list<T>``."""
    return pa.schema(
        [*BATCH_FIELDS, pa.field("value", pa.large_list(value_type), nullable=False)],
        metadata={"dora_zmq.topic": topic, "dora_zmq.format": str(FORMAT_VERSION)},
    )


def segment_file_name(topic: str, segment: int) -> str:
    """``camera%2Fimage.0.arrow``: one flat, safe file name per output segment."""
    return f"{urllib.parse.quote(topic, safe='')}.{segment}.arrow"


@dataclass(slots=True)
class Segment:
    """One stream file of an output.

    Attributes:
        file: its name inside the folder.
        value_type: the Arrow type of the messages' values, as text.
        messages: messages written to it.
        complete: False if writing failed part-way (only ``messages`` of it are readable).
    """

    file: str
    value_type: str
    messages: int = 0
    complete: bool = True


@dataclass(slots=True)
class OutputRecord:
    """What was recorded of one output.

    Attributes:
        topic: ``node/output`` (``node/operator/output`` for an operator's).
        node: the producing node.
        output: the output id inside that node.
        segments: its stream files, in order.
        messages: messages written.
        bytes: Arrow buffer bytes of the values written.
        first_sent_ns / last_sent_ns: send times of the first and last message written.
        not_written: messages received that could not be written (disk full, I/O error).
        dropped: messages the recorder's input queue dropped (it fell behind).
        lost: messages lost in transit on the way to the recorder.
    """

    topic: str
    node: str
    output: str
    segments: list[Segment] = field(default_factory=list)
    messages: int = 0
    bytes: int = 0
    first_sent_ns: int = 0
    last_sent_ns: int = 0
    not_written: int = 0
    dropped: int = 0
    lost: int = 0

    @property
    def value_type(self) -> str:
        """The value type(s) recorded, ``|``-separated when it changed."""
        return " | ".join(dict.fromkeys(s.value_type for s in self.segments)) or "-"


@dataclass(slots=True)
class Manifest:
    """``manifest.json``: the dataflow, its outputs and what became of their messages.

    Attributes:
        dataflow_name: the name the dataflow ran under.
        dataflow_id: its id.
        descriptor: the dataflow YAML as it ran (without the recorder node).
        working_dir: the folder its relative paths start from.
        started_at: when recording started, ISO 8601 UTC.
        start_ns / end_ns: recorder start and end, wall clock ns.
        complete: True once the recorder closed the recording; False while it runs (or if it
            was killed: the last messages of each file may then be cut).
        recorder: the recorder node's id; machine: where it ran.
        outputs: one record per recorded output.
    """

    dataflow_name: str
    dataflow_id: str
    descriptor: str
    working_dir: str
    started_at: str
    start_ns: int
    end_ns: int = 0
    complete: bool = False
    recorder: str = ""
    machine: str = ""
    outputs: list[OutputRecord] = field(default_factory=list)
    format_version: int = FORMAT_VERSION

    @property
    def first_sent_ns(self) -> int:
        """Send time of the first message of the whole recording (0 if empty)."""
        return min((o.first_sent_ns for o in self.outputs if o.messages), default=0)

    def output(self, topic: str) -> OutputRecord:
        """The record of one output.

        Raises:
            RecordingError: the recording has no such output (the message lists them).
        """
        for o in self.outputs:
            if o.topic == topic:
                return o
        known = ", ".join(o.topic for o in self.outputs) or "none"
        raise RecordingError(f"the recording has no output '{topic}' (recorded: {known})")

    def to_json(self) -> str:
        """The manifest as indented JSON text."""
        return json.dumps(asdict(self), indent=2) + "\n"


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Write ``manifest.json`` atomically (a reader never sees half of it).

    Raises:
        OSError: it could not be written.
    """
    tmp = folder / (MANIFEST_NAME + ".tmp")
    tmp.write_text(manifest.to_json(), encoding="utf-8")
    os.replace(tmp, folder / MANIFEST_NAME)


def read_manifest(folder: Path) -> Manifest:
    """Read and check ``manifest.json``.

    Raises:
        RecordingError: the folder or the manifest is missing, unreadable or not ours.
    """
    if not folder.is_dir():
        raise RecordingError(f"recording folder '{folder}' does not exist")
    path = folder / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordingError(f"'{folder}' is not a recording: it has no {MANIFEST_NAME}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RecordingError(f"recording '{folder}': {MANIFEST_NAME} is unreadable or cut short ({exc})") from None
    try:
        return _manifest_from(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordingError(
            f"recording '{folder}': {MANIFEST_NAME} is malformed ({type(exc).__name__}: {exc})"
        ) from None


def _manifest_from(data: Any) -> Manifest:
    if not isinstance(data, dict):
        raise TypeError("the manifest is not a JSON object")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"format version {version!r}; this dora-zmq reads version {FORMAT_VERSION}")
    outputs = []
    for o in data["outputs"]:
        segments = [
            Segment(str(s["file"]), str(s["value_type"]), int(s["messages"]), bool(s["complete"]))
            for s in o["segments"]
        ]
        for s in segments:
            if "/" in s.file or os.sep in s.file or s.file in ("", ".", ".."):
                raise ValueError(f"segment file name {s.file!r} is not a plain file name")
        outputs.append(
            OutputRecord(
                str(o["topic"]),
                str(o["node"]),
                str(o["output"]),
                segments,
                *(
                    int(o[k])
                    for k in ("messages", "bytes", "first_sent_ns", "last_sent_ns", "not_written", "dropped", "lost")
                ),
            )
        )
    return Manifest(
        str(data["dataflow_name"]),
        str(data["dataflow_id"]),
        str(data["descriptor"]),
        str(data["working_dir"]),
        str(data["started_at"]),
        int(data["start_ns"]),
        int(data["end_ns"]),
        bool(data["complete"]),
        str(data["recorder"]),
        str(data["machine"]),
        outputs,
        int(version),
    )
