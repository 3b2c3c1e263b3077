"""Run one dataflow on dora-rs 1.1 (the reference) and on dora_zmq, and collect what it did.

Each node program is written once, against dora's API (``from dora import Node``); for the
dora_zmq run only that import line changes. Programs report what they observe as JSON lines
appended to the file named by ``$COMPAT_OUT`` (one ``record(...)`` call per observation), so
both runs are compared as data, not as log text.

The reference runs with ``dora run`` from the reference venv. dora starts ``.py`` nodes with
the ``python`` found on ``PATH``, so that venv's ``bin`` goes first on ``PATH``. Every process
of a run carries a tag in its environment and is killed at the end (dora's ``run`` has no
background daemon to tear down).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dora_zmq.testing import TAG_ENV, kill_tagged

__all__ = ["EVENT_SINK", "RECORD_HELPER", "FlowRun", "run_both", "run_flow"]

DORA_IMPORT = "from dora import Node"
OURS_IMPORT = "from dora_zmq import Node"

# Imported by the node programs (written next to them as compat_record.py).
RECORD_HELPER = '''
import json, os

def record(node, what, **fields):
    """Append one observation as a JSON line (small writes with O_APPEND stay whole)."""
    line = json.dumps({"node": node, "what": what, **fields}, default=repr, sort_keys=True)
    with open(os.environ["COMPAT_OUT"], "a", encoding="utf-8") as f:
        f.write(line + "\\n")
'''


# A node (id ``sink``) that records every event it gets: type, id, kind; an INPUT's value and
# Arrow type; a NODE_FAILED's details (whether its error text names the exception ``boom-17``).
EVENT_SINK = """
from dora import Node
from compat_record import record

node = Node()
for event in node:
    fields = {"type": event["type"], "id": event["id"], "kind": event["kind"]}
    if event["type"] == "INPUT":
        fields["value"] = event["value"].to_pylist()
        fields["arrow_type"] = str(event["value"].type)
    if event["type"] == "NODE_FAILED":
        value = event["value"]
        fields["source_node_id"] = value["source_node_id"]
        fields["affected_input_ids"] = sorted(value["affected_input_ids"])
        fields["error_names_exception"] = "boom-17" in value["error"]
    record("sink", "event", **fields)
"""


@dataclass(frozen=True, slots=True)
class FlowRun:
    """What one implementation did with a dataflow."""

    impl: str
    returncode: int
    output: str
    records: list[dict[str, Any]]

    def of(self, node: str, what: str | None = None) -> list[dict[str, Any]]:
        """The records of one node (of one kind), in the order written."""
        return [r for r in self.records if r["node"] == node and (what is None or r["what"] == what)]


# dora-rs 1.1.0 itself sometimes crashes a Python node by a signal as it exits, after the node
# did all its work (seen once in about 1,400 CI runs: "Node `sink` failed: exited because of
# signal SIGSEGV", backtrace in cfunction_vectorcall_NOARGS). That is the reference's defect, not
# a difference to compare, so a reference run that ends so is run again, at most this often.
REFERENCE_CRASH = "exited because of signal"
REFERENCE_ATTEMPTS = 3


def run_flow(
    impl: str,
    folder: Path,
    yaml_text: str,
    programs: dict[str, str],
    reference_python: Path | None,
    *,
    timeout: float = 45.0,
    args: tuple[str, ...] = ("run", "flow.yml"),
) -> FlowRun:
    """Write the dataflow and its programs into ``folder/impl`` and run it with ``impl``.

    Args:
        impl: ``"dora"`` (the reference) or ``"dora_zmq"``.
        args: the CLI's arguments (``dora ARGS`` / ``dora-zmq ARGS``), run in that folder.
        programs: file name -> source written against ``from dora import Node``.
    """
    work = folder / impl
    work.mkdir(parents=True, exist_ok=True)
    (work / "compat_record.py").write_text(RECORD_HELPER)
    for name, source in programs.items():
        text = textwrap.dedent(source).lstrip("\n")
        if impl == "dora_zmq":
            assert DORA_IMPORT in text or not name.endswith(".py"), f"{name} must import Node as `{DORA_IMPORT}`"
            text = text.replace(DORA_IMPORT, OURS_IMPORT)
        (work / name).write_text(text)
        if text.startswith("#!"):
            (work / name).chmod(0o755)
    (work / "flow.yml").write_text(textwrap.dedent(yaml_text).lstrip("\n"))
    out = work / "records.jsonl"
    tag = uuid.uuid4().hex
    env = dict(os.environ, COMPAT_OUT=str(out), PYTHONUNBUFFERED="1", **{TAG_ENV: tag})
    if impl == "dora":
        assert reference_python is not None
        reference_python = reference_python.absolute()  # `make compat` names the venv relatively
        env["PATH"] = f"{reference_python.parent}{os.pathsep}{env.get('PATH', '')}"
        env.pop("VIRTUAL_ENV", None)
        argv = [str(reference_python.parent / "dora"), *args]
    else:
        argv = [sys.executable, "-m", "dora_zmq", *args]
    for attempt in range(1, REFERENCE_ATTEMPTS + 1):
        run = _run_once(impl, argv, work, env, out, timeout)
        if impl != "dora" or run.returncode == 0 or REFERENCE_CRASH not in run.output:
            return run
        sys.stderr.write(f"reference crashed by a signal (attempt {attempt}), running it again:\n{run.output[-600:]}\n")
    return run


def _run_once(impl: str, argv: list[str], work: Path, env: dict[str, str], out: Path, timeout: float) -> FlowRun:
    """One run of ``argv`` in ``work``: its exit code, output and records (``out`` starts empty)."""
    out.unlink(missing_ok=True)
    tag = env[TAG_ENV]
    proc = subprocess.Popen(  # noqa: S603 - the CLIs under test
        argv,
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate(timeout=10)
        raise AssertionError(
            f"{impl}: {' '.join(argv)} did not end within {timeout} s:\n{output.decode(errors='replace')[-4000:]}"
        ) from None
    finally:
        leaked = kill_tagged(tag)
    text = output.decode(errors="replace")
    assert not leaked, f"{impl}: processes outlived the run: {leaked}\n{text[-3000:]}"
    records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return FlowRun(impl, proc.returncode, text, records)


def run_both(
    folder: Path, yaml_text: str, programs: dict[str, str], reference_python: Path, **kwargs: Any
) -> tuple[FlowRun, FlowRun]:
    """The same dataflow on the reference, then on dora_zmq."""
    return (
        run_flow("dora", folder, yaml_text, programs, reference_python, **kwargs),
        run_flow("dora_zmq", folder, yaml_text, programs, None, **kwargs),
    )
