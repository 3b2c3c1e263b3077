"""``send_stdout_as``: the lines a node prints become messages on one of its outputs.

The node's file descriptor 1 is replaced by a pipe; a reader thread passes every line on to
the real stdout (so logs still show it) and sends it, as a one-string Arrow array with its
trailing newline (as dora-rs 1.1 does), on the output. Capturing in the node itself, not in
the daemon, keeps the order: ``close()`` drains the pipe before the output's end-of-stream,
so the last lines arrive before INPUT_CLOSED. Lines printed before ``Node()`` are not sent.

Threading: the reader thread owns the pipe's read end and calls ``send`` (``send_output``,
which locks the publisher); ``stop`` is called once, by the thread closing the node.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Callable

__all__ = ["StdoutCapture"]

log = logging.getLogger(__name__)


class StdoutCapture:
    """Lines written to fd 1 go to ``send`` and to the original stdout."""

    def __init__(self, node_id: str, send: Callable[[str], None]) -> None:
        self._send = send
        sys.stdout.flush()
        self._original = os.dup(1)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 1)
        os.close(write_end)
        self._reader = os.fdopen(read_end, "rb")
        self._thread = threading.Thread(target=self._pump, name=f"dora-zmq-stdout-{node_id}", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for raw in self._reader:
            os.write(self._original, raw)
            try:
                self._send(raw.decode(errors="replace"))
            except Exception:  # noqa: BLE001 - a failed send must not stop the node's stdout
                log.exception("send_stdout_as: could not send a line")
        self._reader.close()

    def stop(self, timeout: float = 2.0) -> None:
        """Send what is left, give fd 1 back to the original stdout, and end the thread."""
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._original, 1)  # the pipe's last writer is gone: the reader sees its end
        self._thread.join(timeout)
        os.close(self._original)
