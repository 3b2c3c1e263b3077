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
