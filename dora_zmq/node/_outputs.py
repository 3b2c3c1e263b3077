"""A node's sending side: its publisher socket, sequence numbers and shared-memory sender.

Owner: the holder of :attr:`Outputs.lock` (the application and the stdout-capture thread
send; a receive step reclaims an idle sender's segments with :meth:`Outputs.reclaim`, which
only tries the lock). See ``_session`` for the whole threading model.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Mapping

import pyarrow as pa

from .. import _control as ctl
from .._transport import Publisher
from .._wire import MessageKind, encode_control_frames, encode_data_frames
from ._samples import OutputSample
from ._shm_sender import ShmSender

__all__ = ["Outputs", "RECLAIM_IDLE_S"]

#: A sender that has not looked at its releases for this long is idle: a receive step applies
#: them for it. Short enough that a burst's segments come back before the next burst; long
#: enough that a node sending steadily never pays for it (its sends apply them).
RECLAIM_IDLE_S = 0.05


class Outputs:
    """Sends on the node's outputs; the receive step talks to it by :meth:`post_peers`."""

    def __init__(self, topics: dict[str, bytes], pub: Publisher, shm: ShmSender) -> None:
        self.lock = threading.Lock()
        self.pub = pub  # owner: the lock holder
        self.shm = shm  # owner: the lock holder (post_peers excepted: a message)
        # Written under the lock; read without it as a snapshot (sent_counts).
        self._seqs = {out: 1 for out in topics}

    def send(self, output_id: str, topic: bytes, value: pa.Array, metadata: Mapping[str, Any] | None) -> None:
        """Send ``value`` on ``output_id`` (checked by the caller): shared memory or the socket."""
        shm = self.shm
        with self.lock:
            pub = self.pub
            if pub.manual:  # subscriptions take effect once read (see Publisher)
                shm.drain(pub)
            seq = self._seqs[output_id]
            self._seqs[output_id] = seq + 1
            frames = shm.frames(output_id, topic, seq, value, metadata) if shm.threshold else None
            pub.send(frames or encode_data_frames(topic, seq, value, metadata))
            if frames is not None:
                shm.after_send(pub)

    def allocate(self, output_id: str, nbytes: int) -> OutputSample:
        """Memory for one message on ``output_id`` (see ``Node.allocate_output``)."""
        with self.lock:
            return self.shm.allocate(self.pub, output_id, nbytes)

    def end(self, outputs: Mapping[str, bytes], kind: MessageKind, meta: Mapping[str, Any] | None = None) -> None:
        """Send the end marker ``kind`` (EOS or FAILED) on each of ``outputs`` (id -> topic)."""
        with self.lock:
            for out, topic in outputs.items():
                self.pub.send(encode_control_frames(topic, kind, self._seqs[out], meta))

    def post_peers(self, peers: ctl.Peers) -> None:
        """New peer endpoints, from the receive step (any thread)."""
        self.shm.post_peers(peers)

    def sent_counts(self) -> dict[str, int]:
        """Messages sent per output (sequence numbers start at 1); any thread (a snapshot)."""
        return {out: seq - 1 for out, seq in list(self._seqs.items())}

    def reclaim(self) -> None:
        """Apply releases waiting on the publisher if the sender is idle (never blocks).

        A sender applies releases when it sends; one that stopped sending would hold its
        segments until it exits. A receive step calls this (at least every ``MAX_POLL_MS``).
        """
        shm = self.shm
        if not shm.holds_segments or time.monotonic() - shm.drained_at < RECLAIM_IDLE_S:
            return
        if self.lock.acquire(blocking=False):
            try:
                self.shm.drain(self.pub)
            finally:
                self.lock.release()

    def close(self, linger_ms: int | None = None) -> None:
        """Close the publisher and the shared-memory sender (after the last ``end``).

        ``linger_ms``: how long queued messages may still take to leave (default: the publisher's).
        """
        with self.lock:
            if linger_ms is None:
                self.pub.close()
            else:
                self.pub.close(linger_ms)
            self.shm.close()
