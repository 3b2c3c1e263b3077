"""The ``dataflows/node_api.yml`` example (every Node API call) runs and ends on its own."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import copy_example

import dora_zmq


def test_node_api_example(dora, tmp_path: Path) -> None:
    yml = copy_example("node_api", tmp_path)
    result = dora("run", str(yml)).wait(40)
    out = result.stdout
    assert result.returncode == 0, result.output
    # dora_zmq.__version__ and dataflow_id
    m = re.search(r"^talker talker: dora_zmq (\S+), dataflow ([0-9a-f-]{36})$", out, re.M)
    assert m and m.group(1) == dora_zmq.__version__, out
    # dataflow_descriptor() and node_config()
    assert "talker talker: nodes in the dataflow: talker, relay, listener" in out
    assert "talker talker: outputs text, points, history, COUNT=5" in out
    assert "talker talker: sent 5 ticks" in out
    # bytes through event["data"], a struct array through event["value"], metadata passed on
    for tick in range(5):
        assert f"relay relay: text 'hello {tick}' (tick {tick})" in out
        assert f"relay relay: 3 points ['p0', 'p1', 'p2'], centroid ({tick + 1}.0, 2.0)" in out
        assert f"listener listener: centroid ({tick + 1}.0, 2.0) of tick {tick} via relay" in out
    # a list array, with queue_size set in the long input form
    assert "relay relay: history lengths [1, 2, 3, 4, 5]" in out
    # INPUT_CLOSED for each input, then STOP, then the loop ends
    for input_id in ("text", "points", "history"):
        assert f"relay relay: input {input_id} closed" in out
    assert "relay relay: stop (ALL_INPUTS_CLOSED)" in out
    # the tuple loop
    assert "listener listener: 5 texts, 5 centroids, last text 'hello 4'" in out
    assert "dataflow" in result.stderr and "finished" in result.stderr


_LEAN_NODE = """
import json, sys
from dora_zmq import Node

node = Node()
loaded = sorted(m for m in ("dora_zmq.descriptor.parse", "yaml") if m in sys.modules)
config = node.node_config()
print("LEAN", json.dumps([loaded, sorted(node.dataflow_descriptor()), config["env"], config["outputs"]]), flush=True)
"""


def test_a_node_reads_the_daemons_parsed_dataflow_without_the_parser(dora, tmp_path: Path) -> None:
    """``Node()`` builds its records from the form the daemon sends (no parser, no yaml), and
    ``dataflow_descriptor()``/``node_config()`` still give the YAML as written (loaded on use)."""
    from dora_zmq.testing import write_dataflow

    (tmp_path / "lean.py").write_text(_LEAN_NODE)
    yml = write_dataflow(
        tmp_path,
        """
        nodes:
          - id: lean
            path: lean.py
            env: {MODE: x}
            outputs: [out]
        """,
    )
    result = dora("run", str(yml)).wait(40)
    assert result.returncode == 0, result.output
    line = next(ln for ln in result.stdout.splitlines() if "LEAN " in ln)
    import json

    loaded, keys, env, outputs = json.loads(line.split("LEAN ", 1)[1])
    assert loaded == []  # before: both, imported and run by every Node()
    assert keys == ["nodes"] and env == {"MODE": "x"} and outputs == ["out"]
