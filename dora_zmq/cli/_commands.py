"""Every ``dora-zmq`` command, each a thin layer over the library."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import click
from rich.markup import escape

from .. import _control as ctl
from .._bundle import BundleLimits, parse_size, short_digest
from .._errors import ControlError, DataflowFailed, DescriptorErrors, NodeFailure
from ..coordinator import DEFAULT_ADDRESS, Coordinator
from ..daemon import EXIT_BOUND_S, SHUTDOWN_GRACE_S, Daemon, run_builds
from ..descriptor import Dataflow, load_dataflow
from . import cli
from ._client import StopSignals, coordinator_address, follow, request, wait_for_spawn
from ._console import err, out, print_counters, print_failure_result, print_log_line
from ._duration import DURATION
from ._local import check_reachable, run_local
from ._options import COORDINATOR_OPTION, GRACE_OPTION
from ._recording import apply_recording, print_recording, record_options
from ._ship import ENV_SHIP, not_shipped, ship_folder

_COORD_OPT = COORDINATOR_OPTION
_CACHE_OPT = click.option(
    "--cache-dir",
    "cache_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where shipped dataflow folders are cached (default: $DORA_ZMQ_CACHE_DIR or ~/.cache/dora-zmq).",
)


def _load(path: str, built: bool = False):  # type: ignore[no-untyped-def]
    try:
        return load_dataflow(path, built=built)
    except DescriptorErrors as exc:
        err.print(f"[bold red]{escape(exc.format())}[/bold red]")
        sys.exit(1)


@cli.command()
@click.argument("dataflow", type=click.Path(dir_okay=False))
def check(dataflow: str) -> None:
    """Validate a dataflow YAML; print every problem found."""
    df = _load(dataflow)
    out.print(
        f"[green]ok[/green] {escape(dataflow)}: {len(df.nodes)} nodes,"
        f" machines: {', '.join(m or '(default)' for m in df.machines())}"
    )


def _build(df: Dataflow) -> int:
    """Run the dataflow's ``build:`` commands here, printing their output as node lines."""
    return run_builds(df, lambda node, line: print_log_line(ctl.LogLine("", node, line, "stdout")))


@cli.command()
@click.argument("dataflow", type=click.Path(dir_okay=False))
def build(dataflow: str) -> None:
    """Run the `build:` commands of the dataflow's nodes and operators (in its folder)."""
    df = _load(dataflow)
    _build(df)
    out.print(f"[green]built[/green] {escape(dataflow)}")


@cli.command()
@click.argument("dataflow", type=click.Path(dir_okay=False))
@click.option("--name", default=None, help="A name to refer to the dataflow by.")
@click.option(
    "--build/--no-build",
    "build_first",
    default=True,
    show_default=True,
    help="Run the `build:` commands first (as dora's run does).",
)
@GRACE_OPTION
@record_options
@click.option(
    "--stop-after",
    "stop_after",
    type=DURATION,
    default=None,
    metavar="DURATION",
    help="Send STOP after this long (5s, 2m, 1h, 500ms, or seconds), as Ctrl-C would.",
)
def run(
    dataflow: str,
    name: str | None,
    build_first: bool,
    grace: float,
    record_dir: str | None,
    record_only: tuple[str, ...],
    record_machine: str | None,
    stop_after: float | None,
) -> None:
    """Run a dataflow on this machine (coordinator and daemon embedded) until it ends.

    Ctrl-C sends STOP to every node; a second Ctrl-C kills them. Exits 1 if a node failed.
    """
    df = _load(dataflow)
    if build_first and _build(df):
        df = _load(dataflow, built=True)  # again: what the build made must be there now
    flow = apply_recording(df, record_dir, record_only, name, record_machine)
    try:
        run_local(flow, name, grace, stop_after)
    finally:
        if record_dir is not None:
            print_recording(record_dir)


@cli.command()
@click.option(
    "--bind",
    default=DEFAULT_ADDRESS,
    show_default=True,
    help="Control address to listen on (use tcp://0.0.0.0:PORT for other machines).",
)
@_CACHE_OPT
def coordinator(bind: str, cache_dir: str | None) -> None:
    """Run a coordinator in the foreground."""
    coord = Coordinator(bind, cache_dir=Path(cache_dir) if cache_dir else None)
    _serve_in_foreground(
        coord.serve_forever, lambda _: coord.request_shutdown(), f"coordinator listening on {coord.address}", 10
    )


@cli.command()
@click.option("--machine-id", default="", help="The name `deploy.machine` uses for this machine.")
@_COORD_OPT
@click.option(
    "--bind-data",
    default="",
    metavar="HOST",
    help="Interface for tcp data sockets, for nodes on other machines (e.g. 0.0.0.0).",
)
@click.option(
    "--advertise", default="", metavar="HOST", help="Address other machines reach this one at (for NAT and containers)."
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for ipc sockets (default: a private temporary folder).",
)
@_CACHE_OPT
@click.option(
    "--shipped/--no-shipped",
    "accept_shipped",
    default=True,
    show_default=True,
    help=(
        "Run nodes from dataflow folders shipped by `start`;"
        " --no-shipped runs only folders present on this machine at the same path."
    ),
)
def daemon(
    machine_id: str,
    coordinator: str | None,
    bind_data: str,
    advertise: str,
    run_dir: str | None,
    cache_dir: str | None,
    accept_shipped: bool,
) -> None:
    """Run a daemon in the foreground: it runs this machine's nodes."""
    d = Daemon(
        coordinator_address(coordinator),
        machine_id,
        run_dir=Path(run_dir) if run_dir else None,
        tcp_bind=bind_data,
        advertise=advertise,
        cache_dir=Path(cache_dir) if cache_dir else None,
        accept_shipped=accept_shipped,
    )
    banner = f"daemon '{machine_id or '(default)'}' connecting to {coordinator_address(coordinator)}"
    # A second signal skips the nodes' grace period (as for `run`).
    _serve_in_foreground(
        d.serve_forever, lambda n: d.request_shutdown(SHUTDOWN_GRACE_S if n == 1 else 0.0), banner, EXIT_BOUND_S
    )
    if d.refused:
        raise ControlError(f"the coordinator refused daemon '{machine_id or '(default)'}': {d.refused}")


@cli.command()
@click.option(
    "--publishers", default="tcp://0.0.0.0:53291", show_default=True, help="Where relayed nodes connect their outputs."
)
@click.option(
    "--subscribers",
    default="tcp://0.0.0.0:53292",
    show_default=True,
    help="Where subscribers of relayed nodes connect.",
)
def relay(publishers: str, subscribers: str) -> None:
    """Run a relay for nodes that cannot accept connections (NAT, firewalls).

    Such a node (or every node of a daemon) runs with
    DORA_ZMQ_RELAY=tcp://RELAY:53291,tcp://RELAY:53292 and only connects out.
    """
    from .._transport import Relay

    r = Relay(publishers, subscribers)
    _serve_in_foreground(
        r.serve_forever,
        lambda _: r.request_stop(),
        f"relay: publishers connect to {r.publishers}, subscribers to {r.subscribers}",
        5,
    )


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--operator",
    "operators",
    multiple=True,
    metavar="NAME",
    help="An operator (CLI) key: start, stop, list, logs (repeatable).",
)
@click.option("--daemon", "daemons", multiple=True, metavar="NAME", help="A daemon key, one per machine (repeatable).")
@click.option(
    "--node",
    "nodes",
    multiple=True,
    metavar="NAME",
    help="A node key for the `path: dynamic` node NAME, e.g. on an edge device (repeatable).",
)
@click.option(
    "--client", "clients", multiple=True, metavar="NAME", help="A key with every role (older deployments; repeatable)."
)
def keys(
    directory: str,
    operators: tuple[str, ...],
    daemons: tuple[str, ...],
    nodes: tuple[str, ...],
    clients: tuple[str, ...],
) -> None:
    """Create CURVE keys for a deployment (then set DORA_ZMQ_KEYS=DIRECTORY everywhere).

    With no key named, one key with every role is made ('default'). See the README's
    "Roles and authorization" for which files each machine needs.
    """
    from ..security import Role, generate_keys

    roles = {Role.OPERATOR: list(operators), Role.DAEMON: list(daemons), Role.NODE: list(nodes)}
    written = generate_keys(Path(directory), list(clients), roles)
    for path in written:
        out.print(f"wrote {path}")
    out.print(
        f"keys in {directory}: set DORA_ZMQ_KEYS={directory} on every machine and DORA_ZMQ_CLIENT_KEY to that "
        "machine's key (<folder>/clients/<role>/<name>.key_secret); "
        "secret keys are 0600, give each machine only its own"
    )


@cli.command()
@click.argument("name")
@click.option("--kind", type=click.Choice(["dataflow", "node", "operator"]), default="dataflow", show_default=True)
@click.option(
    "--lang", default="python", show_default=True, help="The language of the starter files (dora_zmq nodes are Python)."
)
def new(name: str, kind: str, lang: str) -> None:
    """Create a starter dataflow (a folder), node or operator (a .py file)."""
    from ._templates import check_name, write_template

    if lang.lower() not in ("python", "py"):
        raise ControlError(
            f"--lang {lang}: dora_zmq's node API is Python, so are its starter files (`--lang python`); "
            "programs in other languages run as nodes through `path:` without the node API"
        )
    problem = check_name(name)
    if problem:
        raise click.BadParameter(problem, param_hint="NAME")
    try:
        files = write_template(name, kind, Path.cwd())
    except FileExistsError as exc:
        raise ControlError(f"{exc}; pick another name") from exc
    for path in files:
        out.print(f"created {escape(str(path))}")
    if kind == "dataflow":
        out.print(f"run it with: dora-zmq run {escape(shlex.quote(f'{name}/dataflow.yml'))}")


@cli.command()
@_COORD_OPT
def up(coordinator: str | None) -> None:
    """Start a coordinator and a daemon in the background on this machine."""
    address = coordinator_address(coordinator)
    if check_reachable(address):
        out.print(f"a coordinator is already running at {address}")
        return
    state = Path(os.environ.get("DORA_ZMQ_STATE_DIR", Path.home() / ".local" / "state" / "dora-zmq"))
    state.mkdir(parents=True, exist_ok=True)
    for role, args in (
        ("coordinator", ["coordinator", "--bind", address]),
        ("daemon", ["daemon", "--coordinator", address]),
    ):
        with open(state / f"{role}.log", "ab") as logf:
            subprocess.Popen(  # noqa: S603 - our own entry point, detached on purpose
                [sys.executable, "-m", "dora_zmq", *args],
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=logf,
                start_new_session=True,
            )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            pong = request(address, ctl.Ping(), timeout_s=1.0)
        except ControlError:
            time.sleep(0.05)  # refused until the coordinator has bound: poll, do not spin
            continue
        if pong.daemons:
            out.print(
                f"[green]up[/green]: coordinator at {address},"
                f" daemons: {', '.join(m or '(default)' for m in pong.daemons)}; logs in {state}"
            )
            return
        time.sleep(0.1)
    raise ControlError(f"coordinator or daemon did not come up within 15 s; see the logs in {state}")


@cli.command()
@_COORD_OPT
def destroy(coordinator: str | None) -> None:
    """Stop every dataflow, the daemons and the coordinator (also: `down`, as in dora)."""
    address = coordinator_address(coordinator)
    reply = request(address, ctl.Destroy())
    out.print(reply.message)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and check_reachable(address):
        time.sleep(0.2)
    out.print("[green]destroyed[/green]")


@cli.command()
@click.argument("dataflow", type=click.Path(dir_okay=False))
@click.option("--name", default=None, help="A name to refer to the dataflow by.")
@click.option("--attach/--detach", default=False, help="Stream logs until the dataflow ends (default: detach).")
@click.option(
    "--ship",
    type=click.Choice(list(ctl.ShipMode.ALL)),
    default=None,
    help="Send the dataflow's folder to the daemons: auto (default, $DORA_ZMQ_SHIP): daemons that do not see "
    "this very folder get a copy; always: every daemon runs from a copy; never: the folder must be at the same "
    "path on every machine.",
)
@click.option(
    "--ship-max-size",
    "ship_max",
    default=None,
    metavar="SIZE",
    help="Largest folder to ship, e.g. 500M (default: $DORA_ZMQ_SHIP_MAX_SIZE or 256M).",
)
@click.option("--build", "build_first", is_flag=True, help="Run the `build:` commands on this machine first.")
@GRACE_OPTION
@_COORD_OPT
@record_options
def start(
    dataflow: str,
    name: str | None,
    attach: bool,
    ship: str | None,
    ship_max: str | None,
    build_first: bool,
    grace: float,
    coordinator: str | None,
    record_dir: str | None,
    record_only: tuple[str, ...],
    record_machine: str | None,
) -> None:
    """Start a dataflow on a running coordinator (see `up`).

    The YAML's folder (less what .dora-zmq-ignore and the defaults leave out) is sent to the
    daemons that need it, once: an unchanged folder is not sent again.
    """
    df = _load(dataflow)
    if build_first and _build(df):
        df = _load(dataflow, built=True)  # again: what the build made must be there now
    df = apply_recording(df, record_dir, record_only, name, record_machine)
    address = coordinator_address(coordinator)
    shipping = ship_folder(address, df, _ship_mode(ship), _ship_limit(ship_max))
    if shipping.bundle is not None:
        for problem in not_shipped(df):
            err.print(
                f"[yellow]warning: node {escape(problem)}:"
                " a daemon that runs it from a shipped copy will not find it[/yellow]"
            )
        b = shipping.bundle
        what = f"sent {shipping.sent} bytes" if shipping.sent else "already on the coordinator, nothing sent"
        out.print(
            f"folder {b.folder}: {b.files} files, {b.content_bytes} bytes ({b.size} packed),"
            f" bundle {short_digest(b.digest)}: {what}"
        )
    started = request(
        address,
        ctl.StartDataflow(
            df.text,
            str(df.path),
            str(df.working_dir),
            name,
            ship=shipping.mode,
            bundle=shipping.ref,
            folder_id=shipping.folder_id,
        ),
    )
    if not attach:  # placed on its daemons, or exit 1 saying why not
        placed = wait_for_spawn(address, started)
        out.print(f"started dataflow '{started.name}' ({started.dataflow_id}): {placed}")
        return
    out.print(f"started dataflow '{started.name}' ({started.dataflow_id})")
    with StopSignals() as signals:
        result = follow(address, started.dataflow_id, grace, signals)
    try:
        _report(result)
    finally:
        if record_dir is not None and Path(record_dir).is_dir():  # else it is on another machine
            print_recording(record_dir)


cli.add_command(destroy, name="down")


@cli.command()
@click.argument("dataflow", required=False)
@GRACE_OPTION
@_COORD_OPT
def stop(dataflow: str | None, grace: float, coordinator: str | None) -> None:
    """Stop a dataflow (by name or id; the only running one if omitted)."""
    address = coordinator_address(coordinator)
    if dataflow is None:
        running = [
            d for d in request(address, ctl.ListDataflows()).dataflows if d.status in ("running", "pending", "stopping")
        ]
        if len(running) != 1:
            raise ControlError(f"{len(running)} dataflows are running; name one (see `dora-zmq list`)")
        dataflow = running[0].id
    out.print(request(address, ctl.StopDataflow(dataflow, grace)).message)


def _serve_in_foreground(serve: Callable[[], None], stop: Callable[[int], None], banner: str, bound_s: float) -> None:
    """Run a service loop on a thread until SIGINT/SIGTERM; ``stop(n)`` on the n-th signal.

    The process is gone at most ``bound_s`` after the first signal: a loop that has not ended
    by then (a wedged node pipe, a flush to a dead collector) is abandoned with ``os._exit``,
    which skips exit hooks that could block too; the kernel kills the nodes (PDEATHSIG).
    """
    with StopSignals() as signals:
        t = threading.Thread(target=serve, name="service", daemon=True)
        t.start()
        out.print(banner)
        handled = 0
        deadline = float("inf")
        while t.is_alive():
            signals.event.wait(0.2)
            if signals.count > handled:
                signals.event.clear()
                handled = signals.count
                deadline = min(deadline, time.monotonic() + bound_s)
                stop(handled)
            elif time.monotonic() > deadline:
                err.print(f"[red]did not stop within {bound_s:g} s of the signal; exiting anyway[/red]")
                os._exit(1)


def _ship_mode(given: str | None) -> str:
    mode = given or os.environ.get(ENV_SHIP) or ctl.ShipMode.AUTO
    if mode not in ctl.ShipMode.ALL:
        raise click.BadParameter(f"${ENV_SHIP}={mode!r}: use one of {', '.join(ctl.ShipMode.ALL)}")
    return mode


def _ship_limit(given: str | None) -> int:
    if given is None:
        return BundleLimits.from_env().max_bytes
    try:
        return parse_size(given)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ship-max-size") from exc


def _report(result: ctl.DataflowResult) -> None:
    print_counters(result)
    if not result.ok:
        print_failure_result(result)
        raise DataflowFailed(
            result.name, [NodeFailure(f.node, f.exit_code, f.signal, f.stderr_tail, f.reason) for f in result.failures]
        )
    err.print(f"[green]dataflow '{result.name}' finished[/green]")
