"""The replay node (``dora-zmq-replay``): sends a node's recorded outputs again.

Swap a sensor node for a replay of it by changing its ``path`` (its outputs stay as they are)::

    - id: camera
      path: dora-zmq-replay
      args: recordings/run1 --speed 1.0      # or --as-fast-as-possible
      outputs:
        - image

It publishes the recorded outputs of the node with its own id (``--node`` picks another),
each message with its recorded value and metadata (less the old trace context: a replayed
message starts a new trace). Timing: a message recorded ``t`` seconds after the first message
of the whole recording goes out ``t / speed`` seconds after the replay starts, so several
replay nodes keep their relative timing; ``--as-fast-as-possible`` sends back to back.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .._errors import DoraZmqError, RecordingError
from .._wire import OTEL_CONTEXT_KEY, TIMESTAMP_KEY
from ..node import Node
from ._reader import Recording

__all__ = ["ReplayOptions", "replay", "main"]

log = logging.getLogger(__name__)

_POLL_EVERY = 64  # messages between two looks for STOP when sending back to back


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """How to replay.

    Attributes:
        source_node: whose outputs to send (default: the replay node's own id).
        speed: 1.0 is the recorded pace, 2.0 twice as fast.
        as_fast_as_possible: ignore the recorded timing.
        allow_truncated: replay the readable part of a file that was cut short.
        loop: start again after the last message, until the dataflow is stopped.
    """

    source_node: str | None = None
    speed: float = 1.0
    as_fast_as_possible: bool = False
    allow_truncated: bool = False
    loop: bool = False


def replay(node: Node, recording: Recording, options: ReplayOptions) -> int:
    """Send the recorded outputs of ``options.source_node`` on ``node``'s outputs.

    Returns:
        The number of messages sent (fewer than recorded if the dataflow was stopped).

    Raises:
        RecordingError: nothing of that node was recorded, or a file is damaged.
    """
    source = options.source_node or node.id
    declared = set(node.descriptor.node(node.id).outputs)
    recorded = [o for o in recording.outputs if o.node == source]
    if not recorded:
        nodes = sorted({o.node for o in recording.outputs})
        raise RecordingError(
            f"recording '{recording.folder}' has no outputs of node '{source}'"
            f" (recorded nodes: {', '.join(nodes) or 'none'})"
        )
    topics = {}
    for o in recorded:
        if o.output in declared:
            topics[o.topic] = o.output
        else:
            log.warning("replay %s: recorded output '%s' is not declared by this node; not sent", node.id, o.output)
    sent = 0
    while True:
        count, stopped = _one_pass(node, recording, topics, options)
        sent += count
        if stopped or not options.loop or count == 0:
            return sent


def _one_pass(node: Node, recording: Recording, topics: dict[str, str], options: ReplayOptions) -> tuple[int, bool]:
    """Send the recording once; ``(messages sent, stopped by STOP)``."""
    origin = recording.manifest.first_sent_ns
    start: float | None = None
    sent = 0
    for message in recording.messages(topics, allow_truncated=options.allow_truncated):
        if start is None:
            start = time.monotonic()  # once the first message is read: opening files takes a while
        if options.as_fast_as_possible:
            if sent % _POLL_EVERY == 0 and _stopped(node, 0.0):
                return sent, True
        elif _stopped_before(node, start + (message.sent_ns - origin) / 1e9 / options.speed):
            return sent, True
        metadata = {k: v for k, v in message.metadata.items() if k not in (OTEL_CONTEXT_KEY, TIMESTAMP_KEY)}
        node.send_output(topics[message.topic], message.value, metadata)
        sent += 1
    return sent, False


def _stopped_before(node: Node, deadline: float) -> bool:
    """Wait until ``deadline`` (monotonic), watching for STOP; True if the node must stop."""
    while (left := deadline - time.monotonic()) > 0:
        if _stopped(node, left):
            return True
    return False


def _stopped(node: Node, timeout: float) -> bool:
    event = node.next(timeout=timeout)
    if event is not None:
        return bool(event["type"] == "STOP")
    return node.finished


def main(argv: list[str] | None = None) -> int:
    """``dora-zmq-replay DIR [--node N] [--speed F | --as-fast-as-possible] [--loop]``, run as a node."""
    parser = argparse.ArgumentParser(prog="dora-zmq-replay", description="Send a node's recorded outputs again.")
    parser.add_argument("recording", help="recording folder (relative to the dataflow's folder)")
    parser.add_argument("--node", default=None, help="replay this node's outputs (default: this node's id)")
    parser.add_argument("--speed", type=float, default=1.0, help="playback speed (2.0: twice as fast)")
    parser.add_argument("--as-fast-as-possible", action="store_true", help="ignore the recorded timing")
    parser.add_argument("--allow-truncated", action="store_true", help="replay the readable part of damaged files")
    parser.add_argument("--loop", action="store_true", help="start again after the last message, until stopped")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if args.speed <= 0:
        parser.error("--speed must be positive (use --as-fast-as-possible for no pacing)")
    node = Node()
    options = ReplayOptions(args.node, args.speed, args.as_fast_as_possible, args.allow_truncated, args.loop)
    try:
        sent = replay(node, Recording.open(Path(args.recording)), options)
    except DoraZmqError as exc:
        log.error("replay %s: %s", node.id, exc)
        node.close(error=str(exc))
        return 1
    node.close()
    log.info("replayed %d message(s) from %s", sent, args.recording)
    return 0


if __name__ == "__main__":
    sys.exit(main())
