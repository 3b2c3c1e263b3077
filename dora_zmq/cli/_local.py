"""``dora-zmq run``: a coordinator and a daemon embedded in one process, one dataflow."""

from __future__ import annotations

import logging
import os
import threading

from .. import _control as ctl
from .._errors import ControlError, DataflowFailed, NodeFailure
from ..coordinator import DEFAULT_ADDRESS, Coordinator
from ..daemon import Daemon
from ..descriptor import Dataflow
from ..security import ENV_CLIENT, ENV_KEYS
from ._client import StopSignals, follow, request
from ._console import err, print_counters, print_failure_result

__all__ = ["run_local"]

log = logging.getLogger(__name__)


def run_local(
    dataflow: Dataflow, name: str | None, grace_s: float, stop_after_s: float | None = None
) -> ctl.DataflowResult:
    """Run ``dataflow`` on this machine until it ends; Ctrl-C/SIGTERM stop it cleanly.

    Raises:
        DataflowFailed: a node failed (the report was printed already).
    """
    if os.environ.pop(ENV_KEYS, None):
        # Everything of a local run is on 127.0.0.1 and ipc, in this process and its children:
        # CURVE would add nothing, and one key cannot be operator, daemon and node at once.
        os.environ.pop(ENV_CLIENT, None)
        log.info("run is local (127.0.0.1 and ipc sockets): the CURVE keys in %s are not used", ENV_KEYS)
    coordinator = _embedded_coordinator()
    daemon = Daemon(coordinator.address, "")
    coordinator.add_in_process_daemon(daemon.identity)  # never declared lost (coordinator/_liveness.py)
    threads = [
        threading.Thread(target=coordinator.serve_forever, name="dora-zmq-coordinator", daemon=True),
        threading.Thread(target=daemon.serve_forever, name="dora-zmq-daemon", daemon=True),
    ]
    for t in threads:
        t.start()
    try:
        with StopSignals() as signals:
            started = request(
                coordinator.address,
                ctl.StartDataflow(dataflow.text, str(dataflow.path or ""), str(dataflow.working_dir), name, local=True),
            )
            result = follow(coordinator.address, started.dataflow_id, grace_s, signals, stop_after_s=stop_after_s)
    finally:
        # Bounded, ordered shutdown: the daemon stops and reaps every node, then the coordinator goes.
        daemon.request_shutdown(0.0)
        threads[1].join(15)
        coordinator.request_shutdown()
        threads[0].join(5)
    print_counters(result)
    if not result.ok:
        print_failure_result(result)
        raise DataflowFailed(
            result.name,
            [NodeFailure(f.node, f.exit_code, f.signal, f.stderr_tail, f.reason, f.machine) for f in result.failures],
        )
    err.print(f"[green]dataflow '{result.name}' finished[/green]" + (" (stopped)" if result.stopped else ""))
    return result


def _embedded_coordinator() -> Coordinator:
    """On the default local address when it is free (so `list`, `logs` and dynamic nodes find
    it), else on any free loopback port."""
    try:
        return Coordinator(DEFAULT_ADDRESS)
    except ControlError:
        coordinator = Coordinator("tcp://127.0.0.1:0")
        err.print(f"[yellow]coordinator on {coordinator.address} ({DEFAULT_ADDRESS} is in use)[/yellow]")
        return coordinator


def check_reachable(address: str) -> bool:
    """True if a coordinator answers at ``address``."""
    try:
        request(address, ctl.Ping(), timeout_s=1.0)
    except ControlError:
        return False
    return True
