"""Recording and replay: a recorder node writes outputs to a folder, a replay node sends them again.

Layout: ``_format`` (the folder contract and manifest), ``_writer`` / ``_reader`` (no node,
no socket), ``_plan`` (dataflow rewrites the CLI uses), ``recorder`` / ``replayer`` (the two
node programs, ``dora-zmq-record`` and ``dora-zmq-replay``), ``mcap_export`` (optional).
"""

from __future__ import annotations

from .._errors import RecordingError
from ._format import MANIFEST_NAME, RECORD_PROGRAM, REPLAY_PROGRAM, Manifest, OutputRecord, Segment
from ._plan import DEFAULT_RECORD_QUEUE, RECORDER_ID, recorded_outputs, source_nodes, with_recorder, with_replays
from ._reader import RecordedMessage, Recording
from ._writer import RecordingWriter

__all__ = [
    "DEFAULT_RECORD_QUEUE",
    "MANIFEST_NAME",
    "RECORDER_ID",
    "RECORD_PROGRAM",
    "REPLAY_PROGRAM",
    "Manifest",
    "OutputRecord",
    "RecordedMessage",
    "Recording",
    "RecordingError",
    "RecordingWriter",
    "Segment",
    "recorded_outputs",
    "source_nodes",
    "with_recorder",
    "with_replays",
]
