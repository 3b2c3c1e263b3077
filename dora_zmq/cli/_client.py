"""Talking to a coordinator from the CLI: requests, and following a dataflow to its end."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from types import FrameType
from typing import Any

from .. import _control as ctl
from .._errors import ControlError
from .._control import ENV_COORDINATOR
from .._transport import Channel, Poller, Wakeup
from ..coordinator import DEFAULT_ADDRESS
from ._console import err, print_log_line

__all__ = [
    "StopSignals",
    "ask",
    "connect_checked",
    "coordinator_address",
    "dora_address",
    "follow",
    "open_stream",
    "request",
    "unreachable",
    "wait_for_spawn",
]

_REQUEST_TIMEOUT_S = 10.0
# A TCP handshake takes milliseconds even across the world: a silent host is down or filtered.
_PROBE_TIMEOUT_S = 2.0
# An attached client that heard nothing for this long asks whether the coordinator still knows
# its dataflow (a restarted coordinator does not: it keeps no state) ...
_ATTACH_CHECK_S = 5.0
# ... and gives up when the coordinator has not answered that for this long.
_ATTACH_UNREACHABLE_S = 30.0


def coordinator_address(given: str | None) -> str:
    """``--coordinator``, else ``$DORA_ZMQ_COORDINATOR``, else dora's ``$DORA_COORDINATOR_ADDR``
    and ``$DORA_COORDINATOR_PORT`` (either may be alone), else the local default."""
    if given or os.environ.get(ENV_COORDINATOR):
        return given or os.environ[ENV_COORDINATOR]
    return (
        dora_address(os.environ.get("DORA_COORDINATOR_ADDR", ""), os.environ.get("DORA_COORDINATOR_PORT", ""))
        or DEFAULT_ADDRESS
    )


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
        ControlError: nothing answered (saying why, and how to start a coordinator when none
            runs) or the reply is ``Failed``.
    """
    client = connect_checked(address, timeout_s)
    try:
        reply = ask(client, address, msg, timeout_s)
    finally:
        client.close()
    return reply


def open_stream(address: str, msg: Any, timeout_s: float = _REQUEST_TIMEOUT_S) -> Channel:
    """Send a streaming request (``Attach``, ``FetchLogs``) and return the channel once the
    coordinator accepted it: what follows comes with ``recv`` (the caller closes it).

    Raises:
        ControlError: as :func:`request`: nothing answered within ``timeout_s``, or refused.
    """
    client = connect_checked(address, timeout_s)
    try:
        ask(client, address, msg, timeout_s)
    except BaseException:
        client.close()
        raise
    return client


def wait_for_spawn(address: str, started: ctl.DataflowStarted) -> str:
    """Wait until the coordinator placed the dataflow's nodes (what it said), saying so when
    that takes a while (the coordinator waits ``machine_wait_s`` for missing daemons).

    Raises:
        ControlError: it could not be placed (why, and the command that fixes it), or the
            coordinator went silent.
    """
    client = connect_checked(address, _REQUEST_TIMEOUT_S)
    try:
        client.send(ctl.WaitForSpawn(started.dataflow_id))
        got = client.recv(1000)
        if got is None:
            err.print(
                f"[yellow]waiting up to {started.machine_wait_s:g} s"
                f" for the daemons of dataflow '{started.name}'[/yellow]"
            )
            got = client.recv(int((started.machine_wait_s + _REQUEST_TIMEOUT_S) * 1000))
    finally:
        client.close()
    if got is None:
        raise ControlError(
            f"the coordinator at {address} did not say whether dataflow '{started.name}' started; see `dora-zmq list`"
        )
    if isinstance(got[1], ctl.Failed):
        raise ControlError(got[1].message)
    return str(got[1].message)


def connect_checked(address: str, timeout_s: float = _REQUEST_TIMEOUT_S) -> Channel:
    """A channel to the coordinator at ``address``, for several requests (see :func:`ask`).

    Raises:
        ControlError: nothing can answer there (see :func:`unreachable`).
    """
    why = unreachable(address, min(timeout_s, _PROBE_TIMEOUT_S))
    if why:
        raise ControlError(why)
    return Channel.connect(address)


def ask(client: Channel, address: str, msg: Any, timeout_s: float = _REQUEST_TIMEOUT_S) -> Any:
    """One request/reply on a channel from :func:`connect_checked`.

    Raises:
        ControlError: no reply within ``timeout_s``, or the reply is ``Failed``.
    """
    try:
        reply = client.request(msg, timeout_s)
    except ControlError as exc:
        raise ControlError(
            f"no coordinator answered at {address} within {timeout_s:g} s: something accepts connections there, "
            "but it is not a dora-zmq coordinator of this version (or with these keys), or it is stuck"
        ) from exc
    if isinstance(reply, ctl.Failed):
        raise ControlError(reply.message)
    return reply


def unreachable(address: str, timeout_s: float = _PROBE_TIMEOUT_S) -> str:
    """Why nothing can answer at a ``tcp://`` address ("" when a connection is accepted).

    A DEALER retries a failed connection silently, so without this every command would wait
    out the whole request timeout before saying anything, and could not say why. A refusal
    means no coordinator runs there; a name that does not resolve or an unreachable network
    is a wrong address, and saying `dora-zmq up` to that would mislead.
    """
    if not address.startswith("tcp://"):
        return ""
    host, _, port_text = address[len("tcp://") :].rpartition(":")
    host = host.strip("[]")
    if host in ("*", "0.0.0.0", ""):  # noqa: S104 - a bind address: the coordinator is local
        host = "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        return f"invalid coordinator address {address!r}: expected tcp://HOST:PORT"
    try:
        infos = _resolve(host, port, timeout_s)
    except TimeoutError:
        return (
            f"cannot reach a coordinator at {address}: resolving '{host}' took more than {timeout_s:g} s"
            " (is a name server reachable?)"
        )
    except socket.gaierror as exc:
        return (
            f"cannot reach a coordinator at {address}: the host name '{host}' does not resolve ({exc.strerror});"
            f" check --coordinator or ${ENV_COORDINATOR}"
        )
    except (OSError, UnicodeError) as exc:
        return f"invalid coordinator address {address!r}: {exc}"
    try:
        sockaddr = infos[0][4]
        with socket.create_connection((str(sockaddr[0]), int(sockaddr[1])), timeout=timeout_s):
            return ""
    except ConnectionRefusedError:
        return (
            f"no coordinator answered at {address} (connection refused):"
            " start one with `dora-zmq up` (or pass --coordinator)"
        )
    except TimeoutError:
        return (
            f"no coordinator answered at {address}: no TCP connection within {timeout_s:g} s"
            " (host down, or a firewall drops it)"
        )
    except OSError as exc:
        return f"cannot reach a coordinator at {address}: {exc.strerror or exc}"


def _resolve(host: str, port: int, timeout_s: float) -> list[Any]:
    """``getaddrinfo`` bounded in time: with an unreachable name server it can block for tens
    of seconds, and a healthcheck must answer in a few. (The lookup thread is left to finish
    on its own; it holds nothing.)

    Raises:
        TimeoutError: no answer within ``timeout_s``.
        socket.gaierror, OSError, UnicodeError: as ``getaddrinfo``.
    """
    result: list[Any] = []
    failure: list[BaseException] = []

    def lookup() -> None:
        try:
            result.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            failure.append(exc)

    thread = threading.Thread(target=lookup, name="dora-zmq-resolve", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise TimeoutError(host)
    if failure:
        raise failure[0]
    return result


class StopSignals:
    """Turns SIGINT/SIGTERM into stop requests while following a dataflow.

    First signal: STOP with the grace period. Second: STOP with no grace (SIGTERM now, SIGKILL
    2 s later). The nodes are in their own process groups, so a terminal's Ctrl-C reaches
    only us and they see a clean STOP event rather than a KeyboardInterrupt.
    """

    def __init__(self) -> None:
        self.count = 0
        self.event = threading.Event()
        #: readable once a signal came: a loop polls it with its sockets to act at once
        self.wakeup = Wakeup()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self.wakeup.close()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        self.event.set()
        self.wakeup.notify()


def _check_known(address: str, dataflow: str, answered: float) -> float:
    """When the coordinator last answered (now, if it does); raises if it lost ``dataflow``.

    Raises:
        ControlError: the coordinator no longer knows ``dataflow`` (it restarted), or it has
            not answered for ``_ATTACH_UNREACHABLE_S``.
    """
    try:
        listed = request(address, ctl.ListDataflows(), timeout_s=_PROBE_TIMEOUT_S).dataflows
    except ControlError as exc:
        if time.monotonic() - answered > _ATTACH_UNREACHABLE_S:
            raise ControlError(
                f"the coordinator at {address} has not answered for {_ATTACH_UNREACHABLE_S:g} s ({exc}); "
                "what became of "
                f"dataflow {dataflow} is unknown here (`dora-zmq list` once it is back)"
            ) from exc
        return answered
    if not any(d.id == dataflow for d in listed):
        raise ControlError(
            f"the coordinator at {address} no longer knows dataflow {dataflow}: it restarted, "
            "and a coordinator keeps no state; the daemons stop the nodes they ran for it"
        )
    return time.monotonic()


def follow(
    address: str,
    dataflow: str,
    grace_s: float,
    signals: StopSignals | None,
    show_logs: bool = True,
    stop_after_s: float | None = None,
) -> ctl.DataflowResult:
    """Stream a dataflow's log lines until it ends; signals become STOP requests.

    Args:
        stop_after_s: send STOP (with ``grace_s``) this long after following began, as the
            first Ctrl-C would (``run --stop-after``).
    """
    client = open_stream(address, ctl.Attach(dataflow, logs=show_logs))
    # A signal wakes the wait at once (its STOP goes out now, not at the next 100 ms tick).
    poller = Poller([client] if signals is None else [client, signals.wakeup])
    stop_at = None if stop_after_s is None else time.monotonic() + stop_after_s
    heard = answered = time.monotonic()  # last message on the stream; last answer to a check
    try:
        handled = stops = 0  # signals seen; STOP requests sent (the second one kills)
        while True:
            ready = poller.wait(100)
            if signals is not None and signals.wakeup in ready:
                signals.wakeup.clear()
            got = client.recv(0) if client in ready else None
            now = time.monotonic()
            if got is not None:
                heard = answered = now
            elif now - heard >= _ATTACH_CHECK_S:
                heard = now
                answered = _check_known(address, dataflow, answered)
            why = ""
            if stop_at is not None and time.monotonic() >= stop_at:
                stop_at = None
                why = f"after {stop_after_s:g} s (--stop-after)"
            if signals is not None and signals.count > handled:
                handled = signals.count
                why = why or "on signal"
            if why:
                stops += 1
                if stops == 1:
                    err.print(
                        f"[yellow]stopping dataflow {why} (grace {grace_s:g} s); press Ctrl-C again to kill[/yellow]"
                    )
                else:
                    err.print("[yellow]killing the dataflow's nodes[/yellow]")
                request(address, ctl.StopDataflow(dataflow, grace_s if stops == 1 else 0.0))
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
