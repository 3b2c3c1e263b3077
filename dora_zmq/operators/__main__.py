"""``python -m dora_zmq.operators``: the process a daemon starts for an operator node."""

from __future__ import annotations

import sys

from .._errors import DoraZmqError
from ._runtime import run_runtime

try:
    run_runtime()
except DoraZmqError as exc:
    # The message names the operator and holds its traceback; it ends up in the node's
    # stderr tail, which the dataflow's failure report shows.
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(1)
