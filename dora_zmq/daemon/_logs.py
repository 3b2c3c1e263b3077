"""Capture of a node's stdout and stderr: to its log file, to the daemon, and a stderr tail.

Everything a node prints is bounded here: a line is cut at ``LINE_MAX`` bytes (a node writing
megabytes without a newline is read in pieces), the log file is rotated at ``FILE_MAX`` bytes
(``log_<node>.txt.1`` keeps the previous part), and lines waiting for the daemon's event loop
are capped at ``PENDING_MAX``; past that they still reach the file, and the coordinator gets
one line saying how many it missed. ``log_messages`` packs the lines for the coordinator.

Threading: a ``LogCapture``'s two reader threads own its file and counters; lines reach the
daemon's event loop only through the ``sink`` queue.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from .. import _control as ctl

__all__ = ["LOG_BATCH_BYTES", "LogCapture", "log_messages"]

log = logging.getLogger(__name__)

_TAIL_LINES = 20
LINE_MAX = 64 * 1024
FILE_MAX = 64 * 1024 * 1024
PENDING_MAX = 10_000
#: Most bytes of lines in one ``NodeLogs``: well under the control sockets' size limit (the
#: coordinator drops a peer that sends more), so a chatty node's lines go in several.
LOG_BATCH_BYTES = 1024 * 1024
# What a line costs in a message beyond its characters (JSON quotes, comma, escapes): an estimate.
_LINE_OVERHEAD = 8


def log_messages(
    lines: Iterable[tuple[str, str, str, str]], max_bytes: int = LOG_BATCH_BYTES
) -> Iterator[ctl.NodeLogs]:
    """``(dataflow_id, node, stream, line)`` as ``NodeLogs`` messages, one stream's lines in order,
    each message's lines under about ``max_bytes`` (at least one line each)."""
    batches: dict[tuple[str, str, str], list[str]] = {}
    for df_id, node, stream, line in lines:
        batches.setdefault((df_id, node, stream), []).append(line)
    for (df_id, node, stream), stream_lines in batches.items():
        chunk: list[str] = []
        size = 0
        for line in stream_lines:
            if chunk and size + len(line) > max_bytes:
                yield ctl.NodeLogs(df_id, node, chunk, stream)
                chunk, size = [], 0
            chunk.append(line)
            size += len(line) + _LINE_OVERHEAD
        yield ctl.NodeLogs(df_id, node, chunk, stream)


class LogCapture:
    """Reads both pipes of one node on two threads until they close.

    Lines go to the node's log file (``[stderr]`` lines marked), and onto ``sink`` as
    ``(dataflow_id, node, stream, line)`` for the daemon to forward to the coordinator.
    """

    def __init__(
        self,
        dataflow_id: str,
        node: str,
        log_path: Path,
        sink: "queue.Queue[tuple[str, str, str, str]]",
        on_closed: Callable[[], None] | None = None,
    ) -> None:
        self.dataflow_id = dataflow_id
        self._on_closed = on_closed  # called by each reader thread when its pipe closes
        self.node = node
        self.log_path = log_path
        self.stderr_tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._sink = sink
        self._file_lock = threading.Lock()
        self._file: IO[str] = open(log_path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115 - closed in join()
        self._written = log_path.stat().st_size
        self._threads: list[threading.Thread] = []
        self._unsent = 0  # lines the full sink could not take, since the last one it took

    def start(self, stdout: IO[bytes], stderr: IO[bytes]) -> None:
        """Start the two reader threads."""
        for stream, pipe in (("stdout", stdout), ("stderr", stderr)):
            t = threading.Thread(target=self._pump, args=(stream, pipe), name=f"log-{self.node}-{stream}", daemon=True)
            t.start()
            self._threads.append(t)

    def _pump(self, stream: str, pipe: IO[bytes]) -> None:
        try:
            for raw in iter(lambda: pipe.readline(LINE_MAX), b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                if stream == "stderr":
                    self.stderr_tail.append(line)
                self._write(line + "\n" if stream == "stdout" else f"[stderr] {line}\n")
                self._forward(stream, line)
        except (OSError, ValueError) as exc:
            log.debug("log pipe of %s closed: %s", self.node, exc)
        finally:
            pipe.close()
            if self._on_closed is not None:
                self._on_closed()  # the node most likely exited: its daemon reaps it now, not at its next poll

    def _write(self, text: str) -> None:
        with self._file_lock:
            if self._written + len(text) > FILE_MAX:
                self._file.close()
                self.log_path.replace(self.log_path.with_name(self.log_path.name + ".1"))
                self._file = open(self.log_path, "w", encoding="utf-8", errors="replace")  # noqa: SIM115
                self._written = 0
            self._file.write(text)
            self._file.flush()
            self._written += len(text)

    def _forward(self, stream: str, line: str) -> None:
        with self._file_lock:  # both pump threads count
            if self._sink.qsize() >= PENDING_MAX:
                self._unsent += 1
                return
            if self._unsent:
                note = (
                    f"[dora-zmq: {self._unsent} line(s) of {self.node} not forwarded (output too fast); "
                    f"see {self.log_path}]"
                )
                self._sink.put((self.dataflow_id, self.node, "stderr", note))
                self._unsent = 0
        self._sink.put((self.dataflow_id, self.node, stream, line))

    def join(self, timeout: float = 2.0) -> None:
        """Wait (``timeout`` in all) for both pipes to be drained (the process has exited), then
        close the file. A pipe a node's own child still holds open is not waited for longer."""
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._file_lock:
            if not self._file.closed:
                self._file.close()

    def tail(self) -> str:
        """The last lines the node wrote to stderr."""
        return "\n".join(self.stderr_tail)
