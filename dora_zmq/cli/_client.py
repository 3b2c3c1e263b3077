"""Talking to a coordinator from the CLI: requests, and following a dataflow to its end."""

from __future__ import annotations

import os
import signal
import socket
import threading
from types import FrameType
from typing import Any

from .. import _control as ctl
from .._errors import ControlError
from .._transport import Channel
from ..coordinator import DEFAULT_ADDRESS
from ._console import err, print_log_line

__all__ = ["StopSignals", "coordinator_address", "dora_address", "follow", "request"]

ENV_COORDINATOR = "DORA_ZMQ_COORDINATOR"
_REQUEST_TIMEOUT_S = 10.0


def coordinator_address(given: str | None) -> str:
    """``--coordinator``, else ``$DORA_ZMQ_COORDINATOR``, else dora's ``$DORA_COORDINATOR_ADDR``
    and ``$DORA_COORDINATOR_PORT`` (either may be alone), else the local default."""
    if given or os.environ.get(ENV_COORDINATOR):
        return given or os.environ[ENV_COORDINATOR]
    return dora_address(os.environ.get("DORA_COORDINATOR_ADDR", ""), os.environ.get("DORA_COORDINATOR_PORT", "")) or DEFAULT_ADDRESS


def dora_address(host: str | None, port: str | int | None) -> str | None:
    """``tcp://HOST:PORT`` from dora's separate host and port (either may be missing: the
    default's part is used); None when neither is given."""
    host, port = (host or "").strip(), str(port or "").strip()
    if not host and not port:
        return None
    default_host, default_port = DEFAULT_ADDRESS.removeprefix("tcp://").rsplit(":", 1)
    return f"tcp://{host or default_host}:{port or default_port}"


def request(address: str, msg: Any, timeout_s: float = _REQUEST_TIMEOUT_S) -> Any:
    """One request/reply with the coordinator.

    Raises:
        ControlError: nothing answered (with how to start a coordinator) or the reply is ``Failed``.
    """
    if _refused(address):
        raise ControlError(f"no coordinator answered at {address} (connection refused): start one with `dora-zmq up` (or pass --coordinator)")
    client = Channel.connect(address)
    try:
        reply = client.request(msg, timeout_s)
    except ControlError as exc:
        raise ControlError(f"no coordinator answered at {address}: start one with `dora-zmq up` (or pass --coordinator)") from exc
    finally:
        client.close()
    if isinstance(reply, ctl.Failed):
        raise ControlError(reply.message)
    return reply


def _refused(address: str) -> bool:
    """True when nothing listens at a ``tcp://`` address.

    A DEALER retries a refused connection silently, so without this every command would wait
    out the whole request timeout before saying that no coordinator is running. Only a refusal
    is conclusive; anything else (a timeout, a name that does not resolve) is left to ZeroMQ.
    """
    if not address.startswith("tcp://"):
        return False
    host, _, port = address[len("tcp://") :].rpartition(":")
    host = host.strip("[]")
    if host in ("*", "0.0.0.0", ""):  # noqa: S104 - a bind address: the coordinator is local
        host = "127.0.0.1"
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True
    except (OSError, ValueError):
        return False


class StopSignals:
    """Turns SIGINT/SIGTERM into stop requests while following a dataflow.

    First signal: STOP with the grace period. Second: STOP with no grace (SIGTERM now, SIGKILL
    2 s later). The nodes are in their own process groups, so a terminal's Ctrl-C reaches
    only us and they see a clean STOP event rather than a KeyboardInterrupt.
    """

    def __init__(self) -> None:
        self.count = 0
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        self.event.set()


def follow(address: str, dataflow: str, grace_s: float, signals: StopSignals | None, show_logs: bool = True) -> ctl.DataflowResult:
    """Stream a dataflow's log lines until it ends; signals become STOP requests."""
    client = Channel.connect(address)
    try:
        client.send(ctl.Attach(dataflow, logs=show_logs))
        handled = 0
        while True:
            got = client.recv(100)
            if signals is not None and signals.count > handled:
                handled = signals.count
                grace = grace_s if handled == 1 else 0.0
                if handled == 1:
                    err.print(f"[yellow]stopping dataflow (grace {grace_s:g} s); press Ctrl-C again to kill[/yellow]")
                else:
                    err.print("[yellow]killing the dataflow's nodes[/yellow]")
                request(address, ctl.StopDataflow(dataflow, grace))
            if got is None:
                continue
            msg = got[1]
            if isinstance(msg, ctl.LogLine):
                print_log_line(msg)
            elif isinstance(msg, ctl.DataflowResult):
                return msg
            elif isinstance(msg, ctl.Failed):
                raise ControlError(msg.message)
    finally:
        client.close()
