"""Taking on a dataflow and starting a node (daemon/_dataflows.py, daemon/_spawning.py): no process."""

from __future__ import annotations

from pathlib import Path

from dora_zmq import _control as ctl
from dora_zmq.daemon._dataflows import DATAFLOW_DIR_CHARS, dataflow_dir, new_dataflow, node_setup, nodes_to_spawn
from dora_zmq.daemon._spawning import node_env
from dora_zmq.daemon._state import DataflowState

_YAML = """
nodes:
  - id: cam
    path: dynamic
    outputs: [image]
  - id: det
    path: det.py
    env:
      MODEL: small
    inputs:
      image: cam/image
"""
_ID = "0123abcd-4567-89ef-0123-456789abcdef"


def _spawn(
    working_dir: Path, df_id: str = _ID, yaml: str = _YAML, nodes: tuple[str, ...] = ("cam", "det")
) -> ctl.SpawnNodes:
    return ctl.SpawnNodes(df_id, "demo", yaml, str(working_dir), list(nodes))


def test_a_dataflows_run_folder_is_named_by_the_start_of_its_id(tmp_path: Path) -> None:
    assert dataflow_dir(tmp_path, _ID) == tmp_path / _ID[:DATAFLOW_DIR_CHARS]
    assert dataflow_dir(tmp_path, "short") == tmp_path / "short"


def test_new_dataflow_makes_its_run_folder_and_runs_in_place_without_a_bundle(tmp_path: Path) -> None:
    df = new_dataflow(_spawn(tmp_path / "src"), tmp_path / "run", accept_shipped=True)
    assert isinstance(df, DataflowState)
    assert df.ipc_dir == dataflow_dir(tmp_path / "run", _ID) and df.ipc_dir.is_dir()
    assert df.working_dir == tmp_path / "src" and not df.shipped and not df.waiting_for_folder
    assert df.senders.nodes == {"cam", "det"} and df.restarts is not None


def test_new_dataflow_says_why_it_cannot_start(tmp_path: Path) -> None:
    refused = new_dataflow(_spawn(tmp_path, df_id="../up"), tmp_path, accept_shipped=True)
    assert refused == "refused: not a valid dataflow id"
    assert not (tmp_path.parent / "up").exists()
    bad = new_dataflow(_spawn(tmp_path, yaml="nodes: 3"), tmp_path, accept_shipped=True)
    assert isinstance(bad, str) and bad.startswith("invalid dataflow: ")
    (tmp_path / "blocked").write_text("a file where the run folder goes")
    blocked = new_dataflow(_spawn(tmp_path), tmp_path / "blocked", accept_shipped=True)
    assert isinstance(blocked, str) and blocked.startswith("cannot create the dataflow's run folder")


def test_the_daemon_spawns_all_but_dynamic_nodes_and_names_unknown_ones(tmp_path: Path) -> None:
    df = new_dataflow(_spawn(tmp_path, nodes=("cam", "det", "ghost")), tmp_path, accept_shipped=True)
    assert isinstance(df, DataflowState)
    spawn, unknown = nodes_to_spawn(df)
    assert spawn == ["det"]
    assert list(unknown) == ["ghost"] and unknown["ghost"].startswith("not in the dataflow")


def test_node_env_gives_the_contracts_names_the_last_word(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(ctl.ENV_NODE, "inherited")
    df = new_dataflow(_spawn(tmp_path), tmp_path, accept_shipped=True)
    assert isinstance(df, DataflowState)
    env = node_env(df, df.descriptor.node("det"), "ipc:///run/daemon.sock", "edge", "tok")
    assert env["MODEL"] == "small"
    assert env[ctl.ENV_NODE] == "det" and env[ctl.ENV_DATAFLOW] == _ID and env[ctl.ENV_MACHINE] == "edge"
    assert env[ctl.ENV_DAEMON] == "ipc:///run/daemon.sock" and env[ctl.ENV_NODE_TOKEN] == "tok"
    assert env["PYTHONUNBUFFERED"] == "1"


def test_node_setup_binds_tcp_only_for_peers_on_other_hosts(tmp_path: Path) -> None:
    static = "nodes:\n  - {id: a, path: a.py, outputs: [x]}\n  - {id: b, path: b.py, inputs: {x: a/x}}\n"
    local = new_dataflow(_spawn(tmp_path, yaml=static, nodes=("a", "b")), tmp_path, accept_shipped=True)
    assert isinstance(local, DataflowState)
    assert node_setup(local, "a", "m1", "0.0.0.0", "host-a").tcp_bind == ""  # every peer is on this machine
    assert node_setup(local, "a", "m1", "", "").tcp_bind == ""
    local.multi_machine = True
    assert node_setup(local, "a", "m1", "0.0.0.0", "host-a").tcp_bind == "tcp://0.0.0.0:*"
    with_dynamic = new_dataflow(_spawn(tmp_path), tmp_path, accept_shipped=True)  # cam is dynamic: maybe remote
    assert isinstance(with_dynamic, DataflowState)
    assert node_setup(with_dynamic, "det", "m1", "10.0.0.2", "").tcp_bind == "tcp://10.0.0.2:*"


def test_node_setup_gives_a_node_its_token_and_its_readers_tokens(tmp_path: Path) -> None:
    msg = ctl.SpawnNodes(_ID, "demo", _YAML, str(tmp_path), ["cam", "det"], reader_secret="s3cret")
    df = new_dataflow(msg, tmp_path, accept_shipped=True)
    assert isinstance(df, DataflowState)
    setup = node_setup(df, "cam", "m1", "", "")
    assert (setup.dataflow_id, setup.node, setup.machine, setup.ipc_dir) == (_ID, "cam", "m1", str(df.ipc_dir))
    assert setup.reader_token == df.reader_token("cam") != ""
    assert setup.reader_tokens == {"det": df.reader_token("det")}  # cam's only reader
    assert not setup.stopping and setup.restart_count == 0
    df.stopping = "manual"
    assert node_setup(df, "cam", "m1", "", "").stopping
