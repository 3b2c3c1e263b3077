"""A daemon's socket in a run folder with a long path: the sweeper of other daemons finds it.

A unix socket's path has room for about 100 bytes, so in a deep temporary folder
``ipc_endpoint`` names the socket by a hash of its name. That name must be the same in every
process: the daemon that binds it and the one that sweeps run folders of dead daemons (which
asks the socket whether a daemon in another pid namespace still lives there) are different
processes, and Python salts ``hash()`` per process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from dora_zmq._transport import ipc_endpoint
from dora_zmq.daemon import Daemon, sweep_stale_run_dirs
from dora_zmq.daemon._rundir import PID_FILE, RUN_DIR_PREFIX


def _long_base(tmp_path: Path, run_dir_len: int) -> tuple[Path, Path]:
    """A base folder and a run folder in it whose path is ``run_dir_len`` characters long."""
    name_len = run_dir_len - len(str(tmp_path)) - len("/b/") - len(RUN_DIR_PREFIX)
    assert name_len > 0, "tmp_path is too long for this test"
    base = tmp_path / "b"
    base.mkdir()
    return base, base / (RUN_DIR_PREFIX + "x" * name_len)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(10)
    return child.pid


def test_a_long_ipc_endpoint_is_the_same_in_every_process() -> None:
    directory = "/tmp/" + "d" * 85  # only named, never made
    here = ipc_endpoint(directory, "daemon")
    assert not here.endswith("/daemon.sock") and len(here) - len("ipc://") <= 107
    code = "import sys; from dora_zmq._transport import ipc_endpoint; print(ipc_endpoint(sys.argv[1], 'daemon'))"
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        argv = [sys.executable, "-c", code, directory]
        out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=True)
        assert out.stdout.strip() == here


def test_a_live_daemon_in_a_deep_run_folder_is_not_swept(tmp_path: Path) -> None:
    """Its pid means nothing here (another pid namespace): its listening socket says it lives."""
    base, run_dir = _long_base(tmp_path, 90)  # too long for "daemon.sock", short enough for the hashed name
    run_dir.mkdir()
    (run_dir / PID_FILE).write_text(f"{_dead_pid()} -\n")
    daemon = Daemon("tcp://127.0.0.1:9", run_dir=run_dir)  # binds its node socket; never connects
    try:
        assert not daemon.node_address.endswith("/daemon.sock")
        assert sweep_stale_run_dirs(base) == []
        assert run_dir.is_dir()
    finally:
        daemon.close()
    # once it is gone (ZeroMQ closes the listener on its own thread, a moment later), its folder goes
    deadline = time.monotonic() + 10
    while not sweep_stale_run_dirs(base):
        assert time.monotonic() < deadline, "the folder of a closed daemon was never swept"
        time.sleep(0.02)
    assert not run_dir.exists()
