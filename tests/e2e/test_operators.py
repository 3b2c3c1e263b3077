"""Operators (seeds 000 and 002) hosted by the runtime node, end to end."""

from __future__ import annotations

from pathlib import Path

from conftest import copy_example

from dora_zmq.testing import write_dataflow


def test_object_detection_example(dora, flow_dir: Path) -> None:
    yml = copy_example("object_detection", flow_dir)
    result = dora("run", str(yml), env={"DETECTOR": ""}).wait(60)
    assert result.returncode == 0, result.output
    assert "webcam: sent 40 frames" in result.stdout
    assert "object_detection: processed 40 frames" in result.stdout
    # on_input operator saw every bbox, and the detector found the three squares
    assert "plot: frame 40: red@" in result.stdout
    assert result.stdout.count("green@") == 40


SOURCE = """
    import pyarrow as pa
    from dora_zmq import Node
    node = Node()
    n = 0
    for event in node:
        if event["type"] == "INPUT":
            node.send_output("numbers", pa.array([n, n + 1]))
            n += 1
            if n == LIMIT:
                break
"""

MULTI = """
    nodes:
      - id: source
        path: source.py
        inputs: {tick: dora/timer/millis/20}
        outputs: [numbers]
      - id: runtime
        operators:
          - id: double
            python: double.py
            inputs: {numbers: source/numbers}
            outputs: [doubled]
          - id: check
            python: check.py
            inputs: {doubled: runtime/double/doubled, raw: source/numbers}
      - id: sink
        path: sink.py
        inputs: {doubled: runtime/double/doubled}
"""


def _multi_flow(dir_: Path, limit: int = 5) -> Path:
    return write_dataflow(
        dir_,
        MULTI,
        files={
            "source.py": SOURCE.replace("LIMIT", str(limit)),
            "double.py": """
        import pyarrow.compute as pc
        from dora_zmq import DoraStatus
        import os

        class Operator:
            def __init__(self):
                assert os.path.basename(__file__) == "double.py"
                self.seen = 0

            def on_event(self, dora_event, send_output):
                assert "nodes" in self.dataflow_descriptor
                if dora_event["type"] == "INPUT":
                    assert dora_event["id"] == "numbers", dora_event["id"]
                    send_output("doubled", pc.multiply(dora_event["value"], 2), dora_event["metadata"])
                elif dora_event["type"] == "INPUT_CLOSED":
                    print("double: input closed", dora_event["id"])
                elif dora_event["type"] == "STOP":
                    print("double: stop")
                return DoraStatus.CONTINUE
    """,
            "check.py": """
        from dora_zmq import DoraStatus

        class Operator:
            def __init__(self):
                self.counts = {}

            def on_input(self, dora_input, send_output):
                self.counts[dora_input["id"]] = self.counts.get(dora_input["id"], 0) + 1
                print("check:", dora_input["id"], dora_input["value"].to_pylist(), sorted(self.counts.items()))
                return DoraStatus.CONTINUE
    """,
            "sink.py": """
        from dora_zmq import Node
        got = [e["value"].to_pylist() for e in Node() if e["type"] == "INPUT"]
        print("sink got", got)
    """,
        },
    )


def test_several_operators_in_one_runtime(dora, flow_dir: Path) -> None:
    result = dora("run", str(_multi_flow(flow_dir))).wait(40)
    assert result.returncode == 0, result.output
    assert "sink got [[0, 2], [2, 4], [4, 6], [6, 8], [8, 10]]" in result.stdout
    # the on_input operator sees both its inputs, with operator-local ids
    assert "check: doubled [8, 10] [('doubled', 5), ('raw', 5)]" in result.stdout or "('doubled', 5)" in result.stdout
    assert "double: input closed numbers" in result.stdout


def test_stop_all_stops_the_dataflow(dora, flow_dir: Path) -> None:
    yml = write_dataflow(
        flow_dir,
        """
        nodes:
          - id: source
            path: source.py
            inputs: {tick: dora/timer/millis/20}
            outputs: [numbers]
          - id: stopper
            operator:
              python: stopper.py
              inputs: {numbers: source/numbers}
    """,
        files={
            "source.py": SOURCE.replace("LIMIT", "10**9"),
            "stopper.py": """
        from dora_zmq import DoraStatus

        class Operator:
            n = 0

            def on_event(self, dora_event, send_output):
                if dora_event["type"] == "INPUT":
                    self.n += 1
                    if self.n == 3:
                        print("stopper: STOP_ALL")
                        return DoraStatus.STOP_ALL
                return DoraStatus.CONTINUE
    """,
        },
    )
    result = dora("run", str(yml)).wait(40)
    assert result.returncode == 0, result.output
    assert "stopper: STOP_ALL" in result.stdout
    assert "finished (stopped)" in result.stderr


def test_operator_exception_fails_the_dataflow(dora, flow_dir: Path) -> None:
    yml = write_dataflow(
        flow_dir,
        """
        nodes:
          - id: source
            path: source.py
            inputs: {tick: dora/timer/millis/20}
            outputs: [numbers]
          - id: vision
            operators:
              - id: detector
                python: broken.py
                inputs: {numbers: source/numbers}
                outputs: [bbox]
          - id: sink
            path: sink.py
            inputs: {bbox: vision/detector/bbox}
    """,
        files={
            "source.py": SOURCE.replace("LIMIT", "5"),
            "broken.py": """
        class Operator:
            def on_event(self, dora_event, send_output):
                if dora_event["type"] == "INPUT":
                    raise ValueError("bad frame shape")
                return 0
    """,
            "sink.py": """
        from dora_zmq import Node
        for e in Node():
            print("sink event", e["type"], e.get("error", ""))
    """,
        },
    )
    result = dora("run", str(yml)).wait(40)
    assert result.returncode == 1, result.output
    assert "node 'vision' failed (exit code 1)" in result.stderr
    assert "operator 'detector' of node 'vision' raised in on_event: ValueError('bad frame shape')" in result.output
    assert "sink event NODE_FAILED operator 'detector'" in result.stdout
    assert "sink event INPUT_CLOSED" in result.stdout
