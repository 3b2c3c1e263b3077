"""Writing a recording folder: one Arrow IPC stream per output, and the manifest.

Threading: a :class:`RecordingWriter` and its streams are owned by one thread (the recorder
node's main loop); nothing here locks.

Messages are buffered per output and written as one record batch when 64 of them, 8 MiB, or
``flush_s`` of age are waiting (a batch per message would cost an IPC message header each),
so a killed recorder loses at most that much. A write that fails (disk full, I/O error)
counts the batch's messages as not written, ends that file (its readable part stays listed)
and the next message starts a new one: recording goes on.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Mapping

import pyarrow as pa

from .._errors import RecordingError
from .._wire import TIMESTAMP_KEY
from ._format import MANIFEST_NAME, Manifest, OutputRecord, Segment, batch_schema, segment_file_name, write_manifest

__all__ = ["RecordingWriter"]

log = logging.getLogger(__name__)

_BATCH_MESSAGES = 64
_BATCH_BYTES = 8 << 20
# One encoder for every message (json.dumps builds one per call); odd values become text.
_encode_json = json.JSONEncoder(default=str).encode


@dataclass(slots=True)
class _Stream:
    """One output's open segment and the messages waiting to be written to it."""

    record: OutputRecord
    schema: pa.Schema | None = None
    value_type: pa.DataType | None = None
    file: BinaryIO | None = None
    writer: pa.ipc.RecordBatchStreamWriter | None = None
    rows: list[tuple[int, int, int, str, pa.Array, int]] = field(default_factory=list)
    pending_bytes: int = 0
    oldest: float = 0.0


class RecordingWriter:
    """Writes messages into a recording folder; :meth:`close` completes the manifest."""

    def __init__(self, folder: Path, manifest: Manifest, flush_s: float = 0.2) -> None:
        """Create the folder (it must not hold a recording already) and write the manifest.

        Raises:
            RecordingError: the folder holds a recording, or cannot be created.
        """
        if (folder / MANIFEST_NAME).exists():
            raise RecordingError(f"'{folder}' holds a recording already; choose another folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_manifest(folder, manifest)
        except OSError as exc:
            raise RecordingError(f"cannot write a recording to '{folder}': {exc}") from exc
        self.folder = folder
        self.manifest = manifest
        self._flush_s = flush_s
        self._streams: dict[str, _Stream] = {}
        for record in manifest.outputs:
            self._streams[record.topic] = _Stream(record)

    def write(
        self, topic: str, value: pa.Array, metadata: Mapping[str, Any], seq: int, sent_ns: int, received_ns: int
    ) -> None:
        """Buffer one message of ``topic`` (an output announced in the manifest)."""
        stream = self._streams[topic]
        value_type = value.type
        if stream.value_type is not None and value_type != stream.value_type:
            self._flush(stream)
            self._end_segment(stream)
        if stream.value_type is None:
            stream.value_type = value_type
        if not stream.rows:
            stream.oldest = time.monotonic()
        if TIMESTAMP_KEY in metadata:  # the receiver's copy of the send time (the `sent` column has it)
            metadata = {k: v for k, v in metadata.items() if k != TIMESTAMP_KEY}
        meta = _encode_json(metadata) if metadata else "{}"
        size = value.get_total_buffer_size()  # nbytes costs ~6 µs (it walks slices); this ~0.1
        stream.rows.append((seq, sent_ns, received_ns, meta, value, size))
        stream.pending_bytes += size
        if len(stream.rows) >= _BATCH_MESSAGES or stream.pending_bytes >= _BATCH_BYTES:
            self._flush(stream)

    def flush_due(self) -> float | None:
        """Write the batches that waited ``flush_s``; returns seconds until the next is due."""
        now = time.monotonic()
        soonest: float | None = None
        for stream in self._streams.values():
            if not stream.rows:
                continue
            due = stream.oldest + self._flush_s - now
            if due <= 0:
                self._flush(stream)
            elif soonest is None or due < soonest:
                soonest = due
        return soonest

    def close(self, dropped: Mapping[str, int], lost: Mapping[str, int]) -> Manifest:
        """Write what is buffered, end every file and complete the manifest.

        Args:
            dropped: per topic, messages the recorder's input queue dropped.
            lost: per topic, messages lost in transit.
        """
        for topic, stream in self._streams.items():
            self._flush(stream)
            self._end_segment(stream)
            stream.record.dropped = int(dropped.get(topic, 0))
            stream.record.lost = int(lost.get(topic, 0))
        self.manifest.end_ns = time.time_ns()
        self.manifest.complete = True
        try:
            write_manifest(self.folder, self.manifest)
        except OSError as exc:
            raise RecordingError(f"cannot complete the manifest of '{self.folder}': {exc}") from exc
        return self.manifest

    # ---- one output ----------------------------------------------------------------

    def _flush(self, stream: _Stream) -> None:
        if not stream.rows:
            return
        rows, stream.rows, stream.pending_bytes = stream.rows, [], 0
        record = stream.record
        try:
            if stream.writer is None:
                self._open_segment(stream)
            assert stream.writer is not None and stream.file is not None
            stream.writer.write_batch(_batch(stream.schema, rows))
            stream.file.flush()
        except (OSError, pa.ArrowException) as exc:
            record.not_written += len(rows)
            log.warning("recording %s: %d message(s) of %s not written: %s", self.folder, len(rows), record.topic, exc)
            if record.segments:
                record.segments[-1].complete = False
            self._end_segment(stream, failed=True)
            return
        record.segments[-1].messages += len(rows)
        if not record.messages:
            record.first_sent_ns = rows[0][1]
        record.messages += len(rows)
        record.last_sent_ns = rows[-1][1]
        record.bytes += sum(r[5] for r in rows)

    def _open_segment(self, stream: _Stream) -> None:
        record = stream.record
        assert stream.value_type is not None
        name = segment_file_name(record.topic, len(record.segments))
        stream.schema = batch_schema(record.topic, stream.value_type)
        stream.file = open(self.folder / name, "xb")  # noqa: SIM115 - owned by the stream until _end_segment
        record.segments.append(Segment(name, str(stream.value_type)))
        stream.writer = pa.ipc.new_stream(stream.file, stream.schema)
        # A new file is listed at once: a recorder that dies later leaves it readable.
        write_manifest(self.folder, self.manifest)

    def _end_segment(self, stream: _Stream, failed: bool = False) -> None:
        writer, file = stream.writer, stream.file
        stream.writer = stream.file = None
        stream.value_type = None
        try:
            if writer is not None and not failed:
                writer.close()
        except (OSError, pa.ArrowException) as exc:
            log.warning("recording %s: closing %s: %s", self.folder, stream.record.topic, exc)
        finally:
            if file is not None:
                try:
                    file.close()
                except OSError as exc:
                    log.warning("recording %s: closing %s: %s", self.folder, stream.record.topic, exc)


def _batch(schema: pa.Schema | None, rows: list[tuple[int, int, int, str, pa.Array, int]]) -> pa.RecordBatch:
    assert schema is not None
    offsets = [0]
    for row in rows:
        offsets.append(offsets[-1] + len(row[4]))
    values = pa.concat_arrays([row[4] for row in rows])
    lists = pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), values, type=schema.field("value").type)
    columns = [
        pa.array([r[0] for r in rows], pa.uint64()),
        pa.array([r[1] for r in rows], pa.int64()).cast(schema.field("sent").type),
        pa.array([r[2] for r in rows], pa.int64()).cast(schema.field("received").type),
        pa.array([r[3] for r in rows], pa.string()),
        lists,
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)
