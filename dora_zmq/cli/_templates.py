"""Starter files for ``dora-zmq new``."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["check_name", "write_template"]

# A name becomes a folder or file name in the current folder, and (for a dataflow) part of the
# command printed after: no path separators, nothing a shell or YAML would read differently.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")

DATAFLOW = """\
# {name}: a timer-driven source and a sink. Run it with `dora-zmq run {name}/dataflow.yml`.
nodes:
  - id: source
    path: source.py
    inputs:
      tick: dora/timer/millis/100
    outputs:
      - numbers

  - id: sink
    path: sink.py
    inputs:
      numbers: source/numbers
"""

SOURCE = '''\
"""Sends ten small arrays, one per timer tick, then ends (which closes the sink's input)."""

import pyarrow as pa

from dora_zmq import Node


def main() -> None:
    node = Node()
    sent = 0
    for event in node:
        if event["type"] == "INPUT" and event["id"] == "tick":
            node.send_output("numbers", pa.array([sent, sent * sent]))
            sent += 1
            if sent == 10:
                break


if __name__ == "__main__":
    main()
'''

NODE = '''\
"""A dora_zmq node: declare it in a dataflow as `path: {file}`."""

from dora_zmq import Node


def main() -> None:
    node = Node()
    for event in node:
        match event["type"]:
            case "INPUT":
                print(f"{{event['id']}}: {{event['value'].to_pylist()}}")
                # node.send_output("my_output", event["value"], event["metadata"])
            case "INPUT_CLOSED":
                print(f"input {{event['id']}} closed")
            case "STOP":
                print(f"stopping ({{event['id']}})")


if __name__ == "__main__":
    main()
'''

OPERATOR = '''\
"""A dora_zmq operator: declare it in a dataflow as `operator: {{python: {file}}}`."""

from dora_zmq import DoraStatus


class Operator:
    def __init__(self) -> None:
        self.count = 0

    def on_event(self, dora_event, send_output) -> DoraStatus:
        if dora_event["type"] == "INPUT":
            self.count += 1
            # send_output("my_output", dora_event["value"], dora_event["metadata"])
        return DoraStatus.CONTINUE
'''


def check_name(name: str) -> str:
    """Why ``name`` cannot name a new dataflow, node or operator ("" if it can)."""
    if not _NAME.fullmatch(name) or name in (".", ".."):
        return (
            f"{name!r} is not a valid name: use letters, digits, '_', '-' and '.' (not first), "
            "no '/' or spaces (it becomes a folder or file in the current folder)"
        )
    return ""


def write_template(name: str, kind: str, where: Path) -> list[Path]:
    """Create the files for a new dataflow, node or operator; never overwrite.

    Raises:
        FileExistsError: a file or folder of that name exists.
    """
    if kind == "dataflow":
        folder = where / name
        if folder.exists():
            raise FileExistsError(f"{folder} already exists")
        folder.mkdir(parents=True)
        files = {
            folder / "dataflow.yml": DATAFLOW.format(name=name),
            folder / "source.py": SOURCE,
            folder / "sink.py": NODE.format(file="sink.py"),
        }
    else:
        path = where / (name if name.endswith(".py") else f"{name}.py")
        if path.exists():
            raise FileExistsError(f"{path} already exists")
        files = {path: (NODE if kind == "node" else OPERATOR).format(file=path.name)}
    for path, text in files.items():
        path.write_text(text)
    return list(files)
