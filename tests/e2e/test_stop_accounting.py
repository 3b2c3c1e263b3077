"""A ``dora-zmq stop`` mid-stream: every message sent is accounted for in the closing report.

The sink leaves its loop on STOP without draining what is in flight, and the source goes on
sending after its STOP (500 more messages, which reach nobody). Neither is a drop nor a loss
in transit; the coordinator counts them as ``not delivered (receiver stopped)`` from both ends' final
counters (``coordinator._accounting``), so for the input received + dropped + lost +
undelivered == sent, exactly.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from dora_zmq.testing import DataflowProcess, write_dataflow

FLOW = """
nodes:
  - id: src
    path: src.py
    inputs: {tick: dora/timer/millis/1}
    outputs: [n]
  - id: sink
    path: sink.py
    inputs:
      n: {source: src/n, queue_size: 10000}
"""

# After its STOP the source sends 500 more once the sink has left its loop (it wrote its
# counts): they reach nobody. Without that wait, the sink's own STOP could come after the
# source's end of stream, and it would take them all (STOPs reach the nodes one after another).
SRC = """
    import json, os, sys, time
    import pyarrow as pa
    from dora_zmq import Node
    node = Node()
    sent = 0
    for event in node:
        if event["type"] == "STOP":
            deadline = time.monotonic() + 30
            while not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:
                time.sleep(0.01)  # (a file is what there is to wait on)
            for _ in range(500):
                node.send_output("n", pa.array([sent], type=pa.int64()))
                sent += 1
            break
        if event["type"] == "INPUT":
            node.send_output("n", pa.array([sent], type=pa.int64()))
            sent += 1
    with open(sys.argv[1], "w") as f:
        json.dump(sent, f)
"""

SINK = """
    import json, sys
    from dora_zmq import Node
    node = Node()
    got = 0
    for event in node:
        if event["type"] == "STOP":
            break  # without draining what is still in flight
        if event["type"] == "INPUT":
            got += 1
            if got == 200:
                print("sink got 200", flush=True)
    with open(sys.argv[1], "w") as f:
        json.dump({"got": got, "dropped": node.dropped.get("n", 0), "lost": node.lost.get("n", 0)}, f)
"""


def _reported(label: str, text: str) -> int:
    """The count of ``sink/n`` on the closing report's ``messages LABEL: ...`` line (0 if none)."""
    match = re.search(rf"messages {re.escape(label)}: [^\n]*sink/n: (\d+)", text)
    return int(match.group(1)) if match else 0


@pytest.mark.timeout(120)
def test_a_stop_mid_stream_adds_up_exactly(
    dora: Callable[..., DataflowProcess], local_cluster: Callable[..., object], tmp_path: Path
) -> None:
    cluster = local_cluster()
    cluster.coordinator()  # type: ignore[attr-defined]
    cluster.daemon()  # type: ignore[attr-defined]
    env = cluster.env  # type: ignore[attr-defined]
    flow = FLOW.replace("src.py", f"src.py\n    args: {tmp_path / 'src.json'} {tmp_path / 'sink.json'}")
    flow = flow.replace("sink.py", f"sink.py\n    args: {tmp_path / 'sink.json'}")
    files = {"src.py": textwrap.dedent(SRC), "sink.py": textwrap.dedent(SINK)}
    path = write_dataflow(tmp_path, flow, files=files)

    attached = dora("start", str(path), "--name", "acct", "--attach", env=env)
    attached.wait_for_line(r"sink got 200", timeout=60)
    stopped = dora("stop", "acct", "--grace-duration", "10", env=env).wait(30)
    assert stopped.returncode == 0, stopped.output
    result = attached.wait(60)
    assert result.returncode == 0, result.output

    sent = json.loads((tmp_path / "src.json").read_text())
    sink = json.loads((tmp_path / "sink.json").read_text())
    dropped = _reported("dropped (queue_size full)", result.stderr)
    lost = _reported("lost in transit", result.stderr)
    undelivered = _reported("not delivered (receiver stopped)", result.stderr)
    assert (dropped, lost) == (sink["dropped"], sink["lost"]), result.output
    assert undelivered > 0, f"the 500 sent after the STOP are not reported:\n{result.output}"
    assert sink["got"] + dropped + lost + undelivered == sent, (
        f"{sink['got']} + {dropped} + {lost} + {undelivered} != {sent} sent:\n{result.output}"
    )

    print(f"sent {sent}: received {sink['got']} + dropped {dropped} + lost {lost} + not delivered {undelivered}")
    listing = json.loads(dora("list", "--format", "json", env=env).wait(20).stdout)
    (row,) = [d for d in listing["dataflows"] if d["name"] == "acct"]
    assert row["undelivered"] == {"sink/n": undelivered}, row
    table = dora("list", env=env).wait(20).stdout
    assert f"acct: messages not delivered (receiver stopped): sink/n: {undelivered}" in table, table
