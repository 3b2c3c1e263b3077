"""Capture of a node's stdout and stderr: to its log file, to the daemon, and a stderr tail."""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from pathlib import Path
from typing import IO

__all__ = ["LogCapture"]

log = logging.getLogger(__name__)

_TAIL_LINES = 20


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
    ) -> None:
        self.dataflow_id = dataflow_id
        self.node = node
        self.log_path = log_path
        self.stderr_tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._sink = sink
        self._file_lock = threading.Lock()
        self._file: IO[str] = open(log_path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115 - closed in join()
        self._threads: list[threading.Thread] = []

    def start(self, stdout: IO[bytes], stderr: IO[bytes]) -> None:
        """Start the two reader threads."""
        for stream, pipe in (("stdout", stdout), ("stderr", stderr)):
            t = threading.Thread(target=self._pump, args=(stream, pipe), name=f"log-{self.node}-{stream}", daemon=True)
            t.start()
            self._threads.append(t)

    def _pump(self, stream: str, pipe: IO[bytes]) -> None:
        try:
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                if stream == "stderr":
                    self.stderr_tail.append(line)
                with self._file_lock:
                    self._file.write(line + "\n" if stream == "stdout" else f"[stderr] {line}\n")
                    self._file.flush()
                self._sink.put((self.dataflow_id, self.node, stream, line))
        except (OSError, ValueError) as exc:
            log.debug("log pipe of %s closed: %s", self.node, exc)
        finally:
            pipe.close()

    def join(self, timeout: float = 2.0) -> None:
        """Wait for both pipes to be drained (the process has exited), then close the file."""
        for t in self._threads:
            t.join(timeout)
        with self._file_lock:
            if not self._file.closed:
                self._file.close()

    def tail(self) -> str:
        """The last lines the node wrote to stderr."""
        return "\n".join(self.stderr_tail)
