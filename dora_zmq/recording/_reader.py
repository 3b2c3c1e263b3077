"""Reading a recording folder back, message by message, with clear errors for damage.

Every way a folder can be broken (no manifest, a manifest cut short, a missing or foreign
stream file, a file cut inside a message, garbage bytes, fewer messages than the manifest
lists) raises :class:`RecordingError` naming the folder, the file and what to do, never an
Arrow or JSON traceback.
"""

from __future__ import annotations

import heapq
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import pyarrow as pa

from .._errors import RecordingError
from ._format import BATCH_FIELDS, Manifest, OutputRecord, Segment, read_manifest

__all__ = ["RecordedMessage", "Recording"]

log = logging.getLogger(__name__)

_EXPECTED = [f.name for f in BATCH_FIELDS] + ["value"]


@dataclass(frozen=True, slots=True)
class RecordedMessage:
    """One recorded message.

    Attributes:
        topic: ``node/output`` it was sent on.
        seq: its sequence number on that output.
        sent_ns: the sender's wall clock when sent (ns since the epoch).
        received_ns: the recorder's wall clock when received.
        metadata: the message metadata.
        value: the message value (an Arrow array).
    """

    topic: str
    seq: int
    sent_ns: int
    received_ns: int
    metadata: dict[str, Any]
    value: pa.Array


class Recording:
    """A recording folder opened for reading (see :mod:`dora_zmq.recording._format`)."""

    def __init__(self, folder: Path, manifest: Manifest) -> None:
        self.folder = folder
        self.manifest = manifest

    @classmethod
    def open(cls, folder: str | Path) -> "Recording":
        """Open a recording folder and check its manifest and files exist.

        Raises:
            RecordingError: the folder is not a readable recording.
        """
        path = Path(folder)
        manifest = read_manifest(path)
        for output in manifest.outputs:
            for segment in output.segments:
                if not (path / segment.file).is_file():
                    raise RecordingError(
                        f"recording '{path}' is incomplete: {segment.file} ({output.topic}) is missing"
                    )
        return cls(path, manifest)

    @property
    def outputs(self) -> list[OutputRecord]:
        """The recorded outputs."""
        return list(self.manifest.outputs)

    def messages(self, topics: Iterable[str] | None = None, allow_truncated: bool = False) -> Iterator[RecordedMessage]:
        """The messages of ``topics`` (default: all), merged in send-time order.

        Args:
            topics: the outputs to read.
            allow_truncated: a file cut short (a recorder that was killed) yields what is
                readable, with a warning, instead of raising.

        Raises:
            RecordingError: a file is cut short, corrupt or not of this recording.
        """
        wanted = [self.manifest.output(t) for t in topics] if topics is not None else self.outputs
        streams = [self._read_output(o, allow_truncated) for o in wanted]
        # The output's index breaks send-time ties stably; each output keeps its own order.
        for _, message in heapq.merge(*(_keyed(s, k) for k, s in enumerate(streams)), key=lambda km: km[0]):
            yield message

    def verify(self, allow_truncated: bool = False) -> dict[str, int]:
        """Read every file through (memory-mapped, values not copied); readable messages per output.

        Raises:
            RecordingError: a file is cut short or corrupt (unless ``allow_truncated``).
        """
        return {o.topic: sum(1 for _ in self._read_output(o, allow_truncated)) for o in self.outputs}

    def read_output(self, topic: str, allow_truncated: bool = False) -> list[RecordedMessage]:
        """Every message of one output, in order."""
        return list(self._read_output(self.manifest.output(topic), allow_truncated))

    def _read_output(self, output: OutputRecord, allow_truncated: bool) -> Iterator[RecordedMessage]:
        for segment in output.segments:
            yield from self._read_segment(output, segment, allow_truncated)

    def _read_segment(self, output: OutputRecord, segment: Segment, allow_truncated: bool) -> Iterator[RecordedMessage]:
        path = self.folder / segment.file
        where = f"recording '{self.folder}': {segment.file} ({output.topic})"
        count = 0
        try:
            # Memory-mapped: batches are read without a copy, so a full check pass is cheap.
            with pa.memory_map(str(path), "r") as f:
                reader = pa.ipc.open_stream(f)
                _check_schema(reader.schema, output.topic, where)
                while True:
                    if not segment.complete and count >= segment.messages:
                        return  # a write failed after these: the rest is not to be trusted
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        break
                    for message in _messages(output.topic, batch):
                        count += 1
                        yield message
        except (pa.ArrowInvalid, pa.ArrowException, OSError, ValueError) as exc:
            problem = f"{where} is cut short or corrupt after {count} message(s) ({_short(exc)})"
            if not allow_truncated:
                raise RecordingError(f"{problem}; use --allow-truncated to replay the readable part") from None
            log.warning("%s; using the %d readable message(s)", problem, count)
            return
        if self.manifest.complete and count < segment.messages:
            problem = f"{where} holds {count} message(s), the manifest lists {segment.messages}: it was cut short"
            if not allow_truncated:
                raise RecordingError(f"{problem}; use --allow-truncated to replay the readable part")
            log.warning("%s", problem)


def _keyed(stream: Iterator[RecordedMessage], k: int) -> Iterator[tuple[tuple[int, int], RecordedMessage]]:
    for message in stream:
        yield (message.sent_ns, k), message


def _check_schema(schema: pa.Schema, topic: str, where: str) -> None:
    if schema.names != _EXPECTED or not pa.types.is_large_list(schema.field("value").type):
        raise RecordingError(f"{where} is not a dora-zmq recording stream (columns: {', '.join(schema.names)})")
    recorded = (schema.metadata or {}).get(b"dora_zmq.topic", b"").decode(errors="replace")
    if recorded != topic:
        raise RecordingError(f"{where} holds output '{recorded}', not '{topic}'")


def _messages(topic: str, batch: pa.RecordBatch) -> Iterator[RecordedMessage]:
    seqs = batch.column("seq").to_pylist()
    sent = batch.column("sent").cast(pa.int64()).to_pylist()
    received = batch.column("received").cast(pa.int64()).to_pylist()
    metas = batch.column("metadata").to_pylist()
    values = batch.column("value")
    for i, seq in enumerate(seqs):
        try:
            meta = json.loads(metas[i])
        except ValueError as exc:
            raise ValueError(f"metadata of message {seq} is not JSON: {exc}") from None
        yield RecordedMessage(
            topic, seq, sent[i], received[i], meta if isinstance(meta, dict) else {}, values[i].values
        )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
