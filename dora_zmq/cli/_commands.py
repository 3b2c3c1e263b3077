"""Every ``dora-zmq`` command, each a thin layer over the library."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import click
from rich.markup import escape
from rich.table import Table

from .. import _control as ctl
from .._errors import ControlError, DataflowFailed, DescriptorErrors, NodeFailure
from ..coordinator import DEFAULT_ADDRESS, Coordinator
from ..daemon import Daemon, run_builds
from ..descriptor import Dataflow, load_dataflow
from . import cli
from ._client import StopSignals, coordinator_address, dora_address, follow, request
from ._console import err, out, print_counters, print_failure_result, print_log_line
from ._duration import DURATION
from ._local import check_reachable, run_local

def _remember(ctx: click.Context, param: click.Parameter, value: object) -> None:
    if value is not None and param.name:
        ctx.meta[f"dora_zmq.{param.name}"] = value


def _coordinator(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--coordinator``, else dora's ``--coordinator-addr``/``--coordinator-port`` (eager, so
    they were read first), else None (the environment decides)."""
    return value or dora_address(ctx.meta.get("dora_zmq.coordinator_addr"), ctx.meta.get("dora_zmq.coordinator_port"))


def _COORD_OPT(command: Callable[..., None]) -> Callable[..., None]:
    """The coordinator address options: ours, and dora's spelling in two parts."""
    for option in reversed((
        click.option("--coordinator", "coordinator", default=None, metavar="ADDR", callback=_coordinator,
                     help=f"Coordinator control address (default: $DORA_ZMQ_COORDINATOR or {DEFAULT_ADDRESS})."),
        click.option("--coordinator-addr", "coordinator_addr", metavar="IP", expose_value=False, is_eager=True,
                     callback=_remember, help="dora's spelling: the coordinator's host ($DORA_COORDINATOR_ADDR)."),
        click.option("--coordinator-port", "coordinator_port", type=int, metavar="PORT", expose_value=False,
                     is_eager=True, callback=_remember, help="dora's spelling: its port ($DORA_COORDINATOR_PORT)."),
    )):
        command = option(command)
    return command
_GRACE_OPT = click.option(
    "--grace-duration", "grace", type=DURATION, default="10s", show_default=True,
    help="How long nodes get to exit after STOP before SIGTERM (then SIGKILL 2 s later): 5s, 500ms, 1m or seconds.",
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
    out.print(f"[green]ok[/green] {escape(dataflow)}: {len(df.nodes)} nodes, machines: {', '.join(m or '(default)' for m in df.machines())}")


@cli.command()
@click.argument("dataflow", type=click.Path(dir_okay=False))
def graph(dataflow: str) -> None:
    """Print the dataflow as a Mermaid flowchart."""
    out.print(_load(dataflow).mermaid(), markup=False)


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
@click.option("--build/--no-build", "build_first", default=True, show_default=True, help="Run the `build:` commands first (as dora's run does).")
@_GRACE_OPT
def run(dataflow: str, name: str | None, build_first: bool, grace: float) -> None:
    """Run a dataflow on this machine (coordinator and daemon embedded) until it ends.

    Ctrl-C sends STOP to every node; a second Ctrl-C kills them. Exits 1 if a node failed.
    """
    df = _load(dataflow)
    if build_first and _build(df):
        df = _load(dataflow, built=True)  # again: what the build made must be there now
    run_local(df, name, grace)


@cli.command()
@click.option("--bind", default=DEFAULT_ADDRESS, show_default=True, help="Control address to listen on (use tcp://0.0.0.0:PORT for other machines).")
def coordinator(bind: str) -> None:
    """Run a coordinator in the foreground."""
    coord = Coordinator(bind)
    _serve_in_foreground(coord.serve_forever, coord.request_shutdown, f"coordinator listening on {coord.address}", 10)


@cli.command()
@click.option("--machine-id", default="", help="The name `deploy.machine` uses for this machine.")
@_COORD_OPT
@click.option("--bind-data", default="", metavar="HOST", help="Interface for tcp data sockets, for nodes on other machines (e.g. 0.0.0.0).")
@click.option("--advertise", default="", metavar="HOST", help="Address other machines reach this one at (for NAT and containers).")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None, help="Folder for ipc sockets (default: a private temporary folder).")
def daemon(machine_id: str, coordinator: str | None, bind_data: str, advertise: str, run_dir: str | None) -> None:
    """Run a daemon in the foreground: it runs this machine's nodes."""
    d = Daemon(coordinator_address(coordinator), machine_id, run_dir=Path(run_dir) if run_dir else None, tcp_bind=bind_data, advertise=advertise)
    banner = f"daemon '{machine_id or '(default)'}' connecting to {coordinator_address(coordinator)}"
    _serve_in_foreground(d.serve_forever, lambda: d.request_shutdown(10.0), banner, 30)


@cli.command()
@click.option("--publishers", default="tcp://0.0.0.0:53291", show_default=True, help="Where relayed nodes connect their outputs.")
@click.option("--subscribers", default="tcp://0.0.0.0:53292", show_default=True, help="Where subscribers of relayed nodes connect.")
def relay(publishers: str, subscribers: str) -> None:
    """Run a relay for nodes that cannot accept connections (NAT, firewalls).

    Such a node (or every node of a daemon) runs with
    DORA_ZMQ_RELAY=tcp://RELAY:53291,tcp://RELAY:53292 and only connects out.
    """
    from .._transport import Relay

    r = Relay(publishers, subscribers)
    _serve_in_foreground(r.serve_forever, r.request_stop, f"relay: publishers connect to {r.publishers}, subscribers to {r.subscribers}", 5)


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--client", "clients", multiple=True, metavar="NAME", help="A client key pair to create (repeatable; default: 'default').")
def keys(directory: str, clients: tuple[str, ...]) -> None:
    """Create CURVE keys for a deployment (then set DORA_ZMQ_KEYS=DIRECTORY everywhere)."""
    from ..security import generate_keys

    written = generate_keys(Path(directory), list(clients))
    for path in written:
        out.print(f"wrote {path}")
    out.print(
        f"keys in {directory}: copy the folder to every machine and set DORA_ZMQ_KEYS={directory} "
        "(DORA_ZMQ_CLIENT_KEY=<folder>/clients/<name>.key_secret to pick a client key)"
    )


@cli.command()
@click.argument("name")
@click.option("--kind", type=click.Choice(["dataflow", "node", "operator"]), default="dataflow", show_default=True)
@click.option("--lang", default="python", show_default=True, help="The language of the starter files (dora_zmq nodes are Python).")
def new(name: str, kind: str, lang: str) -> None:
    """Create a starter dataflow (a folder), node or operator (a .py file)."""
    from ._templates import write_template

    if lang.lower() not in ("python", "py"):
        raise ControlError(
            f"--lang {lang}: dora_zmq's node API is Python, so are its starter files (`--lang python`); "
            "programs in other languages run as nodes through `path:` without the node API"
        )
    try:
        files = write_template(name, kind, Path.cwd())
    except FileExistsError as exc:
        raise ControlError(f"{exc}; pick another name") from exc
    for path in files:
        out.print(f"created {path}")
    if kind == "dataflow":
        out.print(f"run it with: dora-zmq run {name}/dataflow.yml")


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
    for role, args in (("coordinator", ["coordinator", "--bind", address]), ("daemon", ["daemon", "--coordinator", address])):
        with open(state / f"{role}.log", "ab") as logf:
            subprocess.Popen(  # noqa: S603 - our own entry point, detached on purpose
                [sys.executable, "-m", "dora_zmq", *args], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True
            )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            pong = request(address, ctl.Ping(), timeout_s=1.0)
        except ControlError:
            time.sleep(0.05)  # refused until the coordinator has bound: poll, do not spin
            continue
        if pong.daemons:
            out.print(f"[green]up[/green]: coordinator at {address}, daemons: {', '.join(m or '(default)' for m in pong.daemons)}; logs in {state}")
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
@click.option("--build", "build_first", is_flag=True, help="Run the `build:` commands on this machine first.")
@_GRACE_OPT
@_COORD_OPT
def start(dataflow: str, name: str | None, attach: bool, build_first: bool, grace: float, coordinator: str | None) -> None:
    """Start a dataflow on a running coordinator (see `up`)."""
    df = _load(dataflow)
    if build_first and _build(df):
        df = _load(dataflow, built=True)  # again: what the build made must be there now
    address = coordinator_address(coordinator)
    started = request(address, ctl.StartDataflow(df.text, str(df.path), str(df.working_dir), name))
    out.print(f"started dataflow '{started.name}' ({started.dataflow_id})")
    if attach:
        with StopSignals() as signals:
            result = follow(address, started.dataflow_id, grace, signals)
        _report(result)


cli.add_command(destroy, name="down")


@cli.command()
@click.argument("dataflow", required=False)
@_GRACE_OPT
@_COORD_OPT
def stop(dataflow: str | None, grace: float, coordinator: str | None) -> None:
    """Stop a dataflow (by name or id; the only running one if omitted)."""
    address = coordinator_address(coordinator)
    if dataflow is None:
        running = [d for d in request(address, ctl.ListDataflows()).dataflows if d.status in ("running", "pending", "stopping")]
        if len(running) != 1:
            raise ControlError(f"{len(running)} dataflows are running; name one (see `dora-zmq list`)")
        dataflow = running[0].id
    out.print(request(address, ctl.StopDataflow(dataflow, grace)).message)


@cli.command(name="list")
@_COORD_OPT
def list_(coordinator: str | None) -> None:
    """List running and recently finished dataflows."""
    flows = request(coordinator_address(coordinator), ctl.ListDataflows()).dataflows
    table = Table("name", "id", "status", "nodes", "failed", "restarts", "dropped (queue_size)", "lost (network)")
    for d in flows:
        states: dict[str, int] = {}
        for s in d.nodes.values():
            states[s] = states.get(s, 0) + 1
        table.add_row(
            d.name, d.id[:8], d.status, ", ".join(f"{n} {s}" for s, n in sorted(states.items())),
            ", ".join(f.node for f in d.failures) or "-", _counts(d.restarts or {}), _counts(d.drops), _counts(d.lost or {}),
        )
    out.print(table)


@cli.command()
@click.argument("dataflow")
@click.argument("node")
@click.option("--follow", "-f", "follow_", is_flag=True, help="Keep streaming until the dataflow ends.")
@click.option("--tail", type=int, default=0, help="Only the last N lines.")
@_COORD_OPT
def logs(dataflow: str, node: str, follow_: bool, tail: int, coordinator: str | None) -> None:
    """Print a node's output (kept by the coordinator; files are in <yaml dir>/out/<id>/)."""
    from .._transport import Channel

    client = Channel.connect(coordinator_address(coordinator))
    try:
        client.send(ctl.FetchLogs(dataflow, node, follow_, tail))
        with StopSignals() as signals:
            while not signals.event.is_set():
                got = client.recv(200)
                if got is None:
                    continue
                msg = got[1]
                if isinstance(msg, ctl.Failed):
                    raise ControlError(msg.message)
                if isinstance(msg, ctl.LogLine):
                    print_log_line(msg)
                elif isinstance(msg, ctl.DataflowResult):
                    return
    finally:
        client.close()


def _serve_in_foreground(serve: Callable[[], None], stop: Callable[[], None], banner: str, join_s: float) -> None:
    """Run a service loop on a thread until SIGINT/SIGTERM, then stop it (bounded)."""
    with StopSignals() as signals:
        t = threading.Thread(target=serve, name="service", daemon=True)
        t.start()
        out.print(banner)
        while t.is_alive() and not signals.event.wait(0.2):
            pass
        stop()
        t.join(join_s)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "-"


def _report(result: ctl.DataflowResult) -> None:
    print_counters(result)
    if not result.ok:
        print_failure_result(result)
        raise DataflowFailed(result.name, [NodeFailure(f.node, f.exit_code, f.signal, f.stderr_tail, f.reason) for f in result.failures])
    err.print(f"[green]dataflow '{result.name}' finished[/green]")
