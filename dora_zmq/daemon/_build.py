"""Run the ``build:`` commands of a dataflow's nodes and operators, as dora-rs does.

Each non-empty line of ``build:`` is one command, split like a shell would (quotes group,
no shell features: write ``sh -c "..."`` for pipes or variables), run in the dataflow's
folder with the node's ``env:`` added, one after the other; the first that fails stops the
build. Output lines go to ``on_line(node, line)`` as they come. Builds run where this is
called (``dora-zmq build``, and ``run``/``start`` before they start the dataflow).

Kept beside the supervisor: every process dora_zmq starts is started in this package.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Callable, Iterable

from .._errors import BuildFailed
from ..descriptor import Dataflow

__all__ = ["build_commands", "run_builds"]

log = logging.getLogger(__name__)


def build_commands(dataflow: Dataflow, nodes: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """``(node or node/operator, command line)`` for every build line, in YAML order."""
    wanted = set(nodes) if nodes is not None else None
    found: list[tuple[str, str]] = []
    for node in dataflow.nodes:
        if wanted is not None and node.id not in wanted:
            continue
        owners = [(node.id, node.build)] + [(f"{node.id}/{op.id}", op.build) for op in node.operators]
        for owner, build in owners:
            found += [(owner, line.strip()) for line in (build or "").splitlines() if line.strip()]
    return found


def run_builds(dataflow: Dataflow, on_line: Callable[[str, str], None], nodes: Iterable[str] | None = None) -> int:
    """Run every build command (of ``nodes``, or all); returns how many ran.

    Raises:
        BuildFailed: a command could not start or exited non-zero (later ones do not run).
    """
    commands = build_commands(dataflow, nodes)
    for owner, line in commands:
        node_id = owner.split("/", 1)[0]
        env = dict(os.environ)
        env.update(dataflow.node(node_id).env)
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise BuildFailed(f"node '{owner}': cannot split build command `{line}`: {exc}") from exc
        on_line(owner, f"running build command: `{line}` in {dataflow.working_dir}")
        try:
            proc = subprocess.Popen(  # noqa: S603 - the user's own build command
                argv,
                cwd=dataflow.working_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            raise BuildFailed(f"node '{owner}': build command `{line}` could not start: {exc}") from exc
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                on_line(owner, raw.decode(errors="replace").rstrip("\n"))
            code = proc.wait()
        finally:
            if proc.poll() is None:  # interrupted (Ctrl-C): do not leave the build running
                proc.kill()
                proc.wait()
        if code != 0:
            raise BuildFailed(f"node '{owner}': build command `{line}` exited with code {code}")
    return len(commands)
