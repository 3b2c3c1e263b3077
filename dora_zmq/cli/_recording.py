"""``dora-zmq record``, ``replay``, ``export-mcap`` and the ``--record`` option of run/start."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click
from rich.markup import escape
from rich.table import Table

from .._errors import RecordingError
from ..descriptor import Dataflow, parse_dataflow
from . import cli
from ._console import err, out
from ._options import GRACE_OPTION

if TYPE_CHECKING:
    from ..recording import Manifest, Recording

# dora_zmq.recording (and pyarrow, which its file format needs) is imported by the commands
# that record or replay, not by every CLI command.

__all__ = ["record_options", "apply_recording", "print_recording"]


def record_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--record DIR``, ``--record-only TOPIC`` (repeatable) and ``--record-machine M``."""
    f = click.option(
        "--record-machine",
        "record_machine",
        default=None,
        metavar="MACHINE",
        help="Where the recorder node runs (default: the dataflow's default machine); DIR is on that machine.",
    )(f)
    f = click.option(
        "--record-only",
        "record_only",
        multiple=True,
        metavar="NODE[/OUTPUT]",
        help="Record only these outputs or nodes (repeatable; default: every output).",
    )(f)
    f = click.option(
        "--record",
        "record_dir",
        default=None,
        metavar="DIR",
        type=click.Path(file_okay=False),
        help="Record every output's messages into DIR (see `dora-zmq replay`).",
    )(f)
    return f


def apply_recording(
    flow: Dataflow, record_dir: str | None, only: tuple[str, ...], name: str | None, machine: str | None
) -> Dataflow:
    """``flow`` with a recorder node added when ``record_dir`` is given.

    Raises:
        RecordingError: DIR holds a recording already, or there is nothing to record.
    """
    if record_dir is None:
        return flow
    from ..recording import MANIFEST_NAME, with_recorder

    folder = Path(record_dir)
    if (folder / MANIFEST_NAME).exists():
        raise RecordingError(f"'{folder}' holds a recording already; choose another folder")
    err.print(f"recording to {escape(str(folder))}")
    return with_recorder(flow, folder, name or (flow.path.stem if flow.path else None), machine, only)


def print_recording(folder: str | Path) -> None:
    """A table of what a recording holds (skipped, with a note, if the folder is elsewhere)."""
    from ..recording import Recording

    try:
        manifest = Recording.open(folder).manifest
    except RecordingError as exc:
        err.print(f"[yellow]recording: {escape(str(exc))}[/yellow]")
        return
    out.print(_summary(folder, manifest))


def _summary(folder: str | Path, m: Manifest) -> Table:
    total = sum(o.messages for o in m.outputs)
    span = (max((o.last_sent_ns for o in m.outputs), default=0) - m.first_sent_ns) / 1e9 if total else 0.0
    title = (
        f"recording {folder}: dataflow '{m.dataflow_name}', {total} messages over {span:.2f} s, started {m.started_at}"
    )
    if not m.complete:
        title += " [incomplete: the recorder did not finish]"
    table = Table(
        "output",
        "type",
        "messages",
        "bytes",
        "not written",
        "dropped",
        "lost",
        title=escape(title),
        title_justify="left",
    )
    for o in m.outputs:
        table.add_row(
            escape(o.topic),
            escape(o.value_type),
            str(o.messages),
            f"{o.bytes:,}",
            str(o.not_written),
            str(o.dropped),
            str(o.lost),
        )
    return table


def _recording_flow(rec: Recording, dataflow: str | None, load: Callable[[str], Dataflow]) -> Dataflow:
    if dataflow is not None:
        return load(dataflow)
    working_dir = Path(rec.manifest.working_dir)
    if not working_dir.is_dir():
        raise RecordingError(
            f"the recorded dataflow's folder {working_dir} is gone: pass the dataflow file (dora-zmq replay DIR FILE)"
        )
    return parse_dataflow(rec.manifest.descriptor, working_dir=working_dir)


@cli.command()
@click.argument("dataflow", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--out",
    "out_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Recording folder (default: recordings/<name>-<time>).",
)
@click.option("--only", multiple=True, metavar="NODE[/OUTPUT]", help="Record only these outputs or nodes (repeatable).")
@click.option("--name", default=None, help="A name to refer to the dataflow by.")
@GRACE_OPTION
def record(dataflow: str, out_dir: str | None, only: tuple[str, ...], name: str | None, grace: float) -> None:
    """Run a dataflow on this machine and record every output (`run --record` with a default folder)."""
    from ._commands import _load
    from ._local import run_local

    flow = _load(dataflow)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = out_dir or str(Path("recordings") / f"{name or Path(dataflow).stem}-{stamp}")
    try:
        run_local(apply_recording(flow, folder, only, name, None), name, grace)
    finally:
        print_recording(folder)


@cli.command()
@click.argument("recording", type=click.Path(file_okay=False))
@click.argument("dataflow", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--node",
    "nodes",
    multiple=True,
    metavar="NODE",
    help="A node to replace by its replay (repeatable; default: every recorded node that reads no other node).",
)
@click.option("--speed", type=float, default=1.0, show_default=True, help="Playback speed (2.0: twice as fast).")
@click.option("--as-fast-as-possible", "fast", is_flag=True, help="Send back to back, ignoring the recorded timing.")
@click.option("--allow-truncated", is_flag=True, help="Replay the readable part of files that were cut short.")
@click.option("--loop", is_flag=True, help="Start again after the last message, until stopped (Ctrl-C).")
@click.option(
    "--record", "record_dir", default=None, type=click.Path(file_okay=False), metavar="DIR", help="Record this run too."
)
@click.option("--name", default=None, help="A name to refer to the dataflow by.")
@GRACE_OPTION
def replay(
    recording: str,
    dataflow: str | None,
    nodes: tuple[str, ...],
    speed: float,
    fast: bool,
    allow_truncated: bool,
    loop: bool,
    record_dir: str | None,
    name: str | None,
    grace: float,
) -> None:
    """Run the recorded dataflow (or DATAFLOW) with recorded nodes replaced by their replay.

    The replaced nodes send their recorded messages (values, metadata, timing) again; every
    other node runs for real, e.g. a new version of a detector against yesterday's camera.
    """
    from ._commands import _load
    from ._local import run_local

    if speed <= 0:
        raise click.BadParameter("must be positive (use --as-fast-as-possible for no pacing)", param_hint="--speed")
    from ..recording import Recording, source_nodes, with_replays

    rec = Recording.open(recording)
    rec.verify(allow_truncated)  # a damaged file is reported now, not by a node mid-run
    flow = _recording_flow(rec, dataflow, _load)
    replaced = list(nodes) or source_nodes(flow, rec.manifest)
    if not replaced:
        raise RecordingError(
            "no node to replay: name one with --node (recorded nodes: "
            + ", ".join(sorted({o.node for o in rec.manifest.outputs}))
            + ")"
        )
    args = ["--as-fast-as-possible"] if fast else ["--speed", repr(speed)]
    if allow_truncated:
        args.append("--allow-truncated")
    if loop:
        args.append("--loop")
    flow = with_replays(flow, Path(recording), rec.manifest, replaced, args)
    err.print(f"replaying {', '.join(replaced)} from {escape(recording)}")
    try:
        run_local(
            apply_recording(flow, record_dir, (), name or f"{rec.manifest.dataflow_name}-replay", None), name, grace
        )
    finally:
        if record_dir is not None:
            print_recording(record_dir)


@cli.command(name="export-mcap")
@click.argument("recording", type=click.Path(file_okay=False))
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--allow-truncated", is_flag=True, help="Export the readable part of files that were cut short.")
def export_mcap_(recording: str, output: str, allow_truncated: bool) -> None:
    """Write a recording as an MCAP file (needs `pip install 'dora_zmq[mcap]'`)."""
    from ..recording import Recording
    from ..recording.mcap_export import export_mcap

    count = export_mcap(Recording.open(recording), Path(output), allow_truncated)
    out.print(f"wrote {count} messages to {output}")


@cli.command(name="recording-info")
@click.argument("recording", type=click.Path(file_okay=False))
@click.option("--check", is_flag=True, help="Also read every file through (reports damage).")
def recording_info(recording: str, check: bool) -> None:
    """What a recording holds: dataflow, outputs, types, counts (as `ros2 bag info`)."""
    from ..recording import Recording

    rec = Recording.open(recording)
    if check:
        rec.verify()
    out.print(_summary(recording, rec.manifest))
