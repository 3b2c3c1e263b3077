"""A plain node imports only what it uses (issue 16): checked in fresh interpreters.

A plain node: ``from dora_zmq import Node`` with no ``OTEL_*`` variable and no CURVE keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

# Loaded on first use, never by ``from dora_zmq import Node``.
HEAVY = [
    "asyncio",
    "click",
    "dora_zmq.descriptor",
    "dora_zmq.operators",
    "dora_zmq.tracing",
    "opentelemetry",
    "psutil",
    "rich",
    "yaml",
    "zmq.auth",
]


def _fresh(code: str, **env: str) -> Any:
    """Run ``code`` in a new interpreter without OTEL_*/CURVE variables; its last line is JSON."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DORA_ZMQ_"))}
    done = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _loaded_after(statement: str) -> list[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    loaded: list[str] = _fresh(code)
    return loaded


def test_from_dora_zmq_import_node_loads_no_heavy_module() -> None:
    assert _loaded_after("from dora_zmq import Node") == []


def test_import_dora_zmq_loads_no_runtime() -> None:
    code = "import json, sys, dora_zmq\nprint(json.dumps('dora_zmq.node' in sys.modules))"
    assert _fresh(code) is False
    assert _loaded_after("import dora_zmq") == []


def test_public_names_resolve_lazily() -> None:
    import dora_zmq

    for name in dora_zmq.__all__:
        assert getattr(dora_zmq, name) is not None, name
    assert set(dora_zmq.__all__) <= set(dir(dora_zmq))
    from dora_zmq.node import Node
    from dora_zmq.operators import DoraStatus

    assert dora_zmq.Node is Node and dora_zmq.DoraStatus is DoraStatus
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        dora_zmq.Nope  # noqa: B018


def test_node_tracing_imports_opentelemetry_only_when_configured() -> None:
    code = (
        "import json, sys\nfrom dora_zmq.node._node import _node_tracing\n"
        "t = _node_tracing('n', 'd', 'm')\n"
        "print(json.dumps([t is not None, 'opentelemetry' in sys.modules]))"
    )
    assert _fresh(code) == [False, False]
    assert _fresh(code, OTEL_TRACES_EXPORTER="console") == [True, True]
    # an OTEL_* variable that leaves tracing off: OpenTelemetry may load, no tracing
    assert _fresh(code, OTEL_SDK_DISABLED="true")[0] is False


def test_curve_server_still_starts_its_authenticator(tmp_path: Any) -> None:
    """The ZAP thread, now imported on first use, still runs for a CURVE server."""
    code = (
        "import json, sys, zmq\nfrom dora_zmq.security import secure_server, stop_authenticator\n"
        "from dora_zmq.security import Plane\n"
        "before = 'zmq.auth.thread' in sys.modules\n"
        "ctx = zmq.Context(); s = ctx.socket(zmq.ROUTER); secure_server(s, Plane.CONTROL)\n"
        "after = 'zmq.auth.thread' in sys.modules\n"
        "stop_authenticator(); s.close(0); ctx.term()\n"
        "print(json.dumps([before, after]))"
    )
    from dora_zmq.security import generate_keys

    generate_keys(tmp_path, ["default"])
    assert _fresh(code, DORA_ZMQ_KEYS=str(tmp_path)) == [False, True]


# What the control plane never needs while tracing is off: the coordinator and daemons handle
# no Arrow value (pyarrow and numpy were 45 of their 79 MB), and the CLI only describes them.
NOT_FOR_THE_CONTROL_PLANE = ["numpy", "opentelemetry", "pyarrow", "dora_zmq._wire", "dora_zmq.recording"]


@pytest.mark.parametrize(
    "statement",
    [
        "import dora_zmq.coordinator",
        "import dora_zmq.daemon",
        "from dora_zmq.cli import cli",
        "from dora_zmq.cli._local import run_local",
    ],
)
def test_the_control_plane_imports_no_arrow_and_no_opentelemetry(statement: str) -> None:
    code = (
        f"import json, sys\n{statement}\n"
        f"print(json.dumps(sorted(m for m in {NOT_FOR_THE_CONTROL_PLANE!r} if m in sys.modules)))"
    )
    assert _fresh(code) == []


# Control messages a node never exchanges (it talks to its daemon only), and what the CLI, the
# coordinator and the daemon need only later (psutil: the daemon's first resource sample, a
# second after its first node started) or for another command than ``run``.
NOT_FOR_A_NODE = [
    "dora_zmq._control.cli_to_coordinator",
    "dora_zmq._control.coordinator_to_cli",
    "dora_zmq._control.coordinator_to_daemon",
    "dora_zmq._control.daemon_to_coordinator",
    "secrets",
    "shutil",
    "tempfile",
]
NOT_BEFORE_RUN_SPAWNS = [
    "psutil",
    "dora_zmq.cli._graph",
    "dora_zmq.cli._logs",
    "dora_zmq.cli._top",
    "dora_zmq.cli._views",
]


def test_a_node_loads_only_its_own_control_messages() -> None:
    code = (
        "import json, sys\nfrom dora_zmq import Node\nimport dora_zmq.node\n"
        f"print(json.dumps(sorted(m for m in {NOT_FOR_A_NODE!r} if m in sys.modules)))"
    )
    assert _fresh(code) == []


def test_run_loads_no_other_command_and_no_psutil() -> None:
    code = (
        "import json, sys\nfrom dora_zmq.cli import cli\nimport dora_zmq.cli._local\n"
        f"print(json.dumps(sorted(m for m in {NOT_BEFORE_RUN_SPAWNS!r} if m in sys.modules)))"
    )
    assert _fresh(code) == []


def test_lazy_package_names_resolve() -> None:
    import dora_zmq._control as control
    import dora_zmq._shm as shm
    import dora_zmq.tracing as tracing

    for package in (control, shm, tracing):
        for name in package.__all__:
            assert getattr(package, name) is not None, (package.__name__, name)
        assert set(package.__all__) <= set(dir(package))
        with pytest.raises(AttributeError, match="no attribute 'Nope'"):
            package.Nope  # noqa: B018
