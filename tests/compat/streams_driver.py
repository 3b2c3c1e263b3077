"""Run the cases of ``streams_cases.py`` on one streams implementation and print JSON.

Usage: ``python streams_driver.py MODULE [CASE ...]`` where MODULE is ``degirum_tools.streams``
or ``dora_zmq.streams``. Prints one JSON object, case name -> summary. A case that raises
is summarised as ``{"uncaught": ...}``; one that does not finish in time as ``{"hung": true}``
(its threads are left behind, and the process ends with ``os._exit`` so they cannot hold it).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

CASE_TIMEOUT_S = 15.0


def run_case(fn: Any, module: Any) -> Any:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = fn(module)
        except BaseException as exc:  # reported, not raised: the other cases still run
            outcome["result"] = {"uncaught": type(exc).__name__ if not isinstance(exc, Exception) else "Exception"}
            outcome["text"] = f"{type(exc).__name__}: {exc}"

    thread = threading.Thread(target=target, name=f"case-{fn.__name__}", daemon=True)
    thread.start()
    thread.join(CASE_TIMEOUT_S)
    if thread.is_alive():
        return {"hung": True}, ""
    return outcome["result"], outcome.get("text", "")


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from streams_cases import CASES

    module = importlib.import_module(sys.argv[1])
    names = sys.argv[2:] or list(CASES)
    results: dict[str, Any] = {}
    texts: dict[str, str] = {}
    for name in names:
        results[name], texts[name] = run_case(CASES[name], module)
    print(json.dumps({"results": results, "uncaught_texts": texts}, default=repr, sort_keys=True))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
