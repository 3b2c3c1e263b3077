"""A node cannot release shared memory or announce departures on behalf of another reader.

``forger`` reads the same output as ``reader`` and, on its data connection, sends what would
make the publisher treat ``reader`` as gone (its start marker unsubscribed) and a release
naming ``reader``. Before reader tokens, both were taken on their word: the publisher would
free ``reader``'s share of segments it still maps. Now they are ignored with a warning, and
``reader`` sees every value intact.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dora_zmq.testing import write_dataflow

pytestmark = pytest.mark.timeout(60)

_SOURCE = """
import numpy as np
from dora_zmq import Node

node = Node()
sent = 0
for event in node:
    if event["type"] == "INPUT" and event["id"] == "tick":
        sent += 1
        node.send_output("frame", np.full(256 * 1024, sent % 256, dtype=np.uint8))  # shared memory
        if sent == 30:
            break
"""

_READER = """
import numpy as np
from dora_zmq import Node

node = Node()
held, bad = [], 0
for event in node:
    if event["type"] == "INPUT":
        held.append(event["value"])  # keep every value mapped: none may be reused under us
        n = len(held)
        bad += sum(1 for i, v in enumerate(held, 1) if not (v.to_numpy() == i % 256).all())
print(f"reader got {len(held)} bad {bad}", flush=True)
"""

_FORGER = """
from dora_zmq import Node
from dora_zmq._wire import encode_release, marker_topic

node = Node()
forged = False
for event in node:
    if event["type"] == "INPUT" and not forged:
        forged = True
        sub = node._sub  # its own data connection to the source, as any subscriber has
        sub.subscribe(marker_topic("reader"))  # "reader attached" (an unsubscription must follow one)
        sub.send_upstream(b"\\x00" + marker_topic("reader"))  # "reader left"
        sub.send_upstream(encode_release("reader", b"\\0" * 80))
        sub.send_upstream(encode_release("reader/" + "0" * 32, b"\\0" * 80))
        print("forger: sent", flush=True)
"""


def test_forged_releases_and_markers_for_another_reader_are_ignored(dora, tmp_path: Path) -> None:
    flow = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: source
            path: source.py
            inputs: {tick: dora/timer/millis/20}
            outputs: [frame]
          - id: reader
            path: reader.py
            inputs: {frame: {source: source/frame, queue_size: 100}}
          - id: forger
            path: forger.py
            inputs: {frame: source/frame}
        """,
        files={"source.py": _SOURCE, "reader.py": _READER, "forger.py": _FORGER},
    )
    result = dora("run", str(flow)).wait(45)
    assert result.returncode == 0, result.output
    out = result.output
    assert "forger: sent" in out, out
    assert "reader got 30 bad 0" in out, out
    assert re.search(r"ignored a start marker claiming to come from reader 'reader' without its token", out), out
    assert re.search(r"ignored a shared-memory release claiming to come from reader 'reader' without its token", out), (
        out
    )
