"""The recorder node (``dora-zmq-record``): subscribes to outputs and writes a recording.

An ordinary node: its inputs are the outputs to record (the CLI's ``--record`` adds it, or a
YAML declares it), so it runs on any machine and subscribes like any other node; a slow disk
makes its own input queues drop (counted in the manifest), never the senders wait.

::

    - id: recorder
      path: dora-zmq-record
      args: --out recordings/run1
      inputs:
        image: camera/image
        bbox: {source: detector/bbox, queue_size: 1000}
"""

from __future__ import annotations

import argparse
import datetime
import logging
import sys
import time
from pathlib import Path

from .._errors import DoraZmqError
from ..descriptor import OutputRef
from ..node import Node
from ._format import Manifest, OutputRecord
from ._plan import without_node
from ._writer import RecordingWriter

__all__ = ["main", "record"]

log = logging.getLogger(__name__)


def record(node: Node, folder: Path, name: str | None = None) -> Manifest:
    """Write every input of ``node`` into ``folder`` until its inputs close or it is stopped.

    Returns:
        The completed manifest.

    Raises:
        RecordingError: the folder cannot be written.
    """
    spec = node.descriptor.node(node.id)
    topics = {i.id: i.source.topic for i in spec.inputs.values() if isinstance(i.source, OutputRef)}
    outputs: dict[str, OutputRecord] = {}
    for topic in topics.values():
        src_node, output = topic.split("/", 1)
        outputs.setdefault(topic, OutputRecord(topic, src_node, output))
    now = time.time_ns()
    manifest = Manifest(
        dataflow_name=name or node.dataflow_id,
        dataflow_id=node.dataflow_id,
        descriptor=without_node(node.descriptor, node.id),
        working_dir=str(node.descriptor.working_dir),
        started_at=datetime.datetime.fromtimestamp(now / 1e9, datetime.timezone.utc).isoformat(),
        start_ns=now,
        recorder=node.id,
        machine=node.machine,
        outputs=list(outputs.values()),
    )
    writer = RecordingWriter(folder, manifest)
    try:
        wait: float | None = None
        while True:
            event = node.next(timeout=wait)
            if event is None:
                if node.finished:
                    break
            elif event["type"] == "INPUT" and event["id"] in topics:
                writer.write(
                    topics[event["id"]], event["value"], event["metadata"], event.seq, event.sent_ns, event.received_ns
                )
            elif event["type"] == "STOP":
                break
            wait = writer.flush_due()
    finally:
        by_topic_dropped: dict[str, int] = {}
        by_topic_lost: dict[str, int] = {}
        for input_id, n in node.dropped.items():
            if input_id in topics:
                by_topic_dropped[topics[input_id]] = by_topic_dropped.get(topics[input_id], 0) + n
        for input_id, n in node.lost.items():
            if input_id in topics:
                by_topic_lost[topics[input_id]] = by_topic_lost.get(topics[input_id], 0) + n
        manifest = writer.close(by_topic_dropped, by_topic_lost)
    return manifest


def main(argv: list[str] | None = None) -> int:
    """``dora-zmq-record --out DIR [--name NAME]``, run by a daemon as a node."""
    parser = argparse.ArgumentParser(prog="dora-zmq-record", description="Record a node's inputs into a folder.")
    parser.add_argument("--out", required=True, help="recording folder (relative to the dataflow's folder)")
    parser.add_argument("--name", default=None, help="the dataflow's name, for the manifest")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    node = Node()
    try:
        manifest = record(node, Path(args.out), args.name)
    except DoraZmqError as exc:
        node.close(error=str(exc))
        log.error("recorder: %s", exc)
        return 1
    node.close()
    total = sum(o.messages for o in manifest.outputs)
    missed = sum(o.not_written + o.dropped + o.lost for o in manifest.outputs)
    log.info(
        "recorded %d message(s) of %d output(s) to %s (%d not recorded)", total, len(manifest.outputs), args.out, missed
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
