"""docker-compose.yml's services, run verbatim with one network namespace per service.

No Docker engine runs here, so this is how we know that what compose would start works:
each service gets its own "host" on a bridge, an /etc/hosts that resolves the compose
service names (``ip netns exec`` bind-mounts /etc/netns/<ns>/hosts over /etc/hosts, as
compose's DNS would answer), and runs exactly its `command:` and `environment:`. The only
substitutions are the ones the image makes: `dora-zmq` is our venv's ``python -m dora_zmq``,
the ./dataflows mount is a copy of it at a temporary path, and the `jaeger` service is a
small OTLP receiver (otlp_sink.py) at the same name and port. Then, like `docker compose
down`, every service gets SIGTERM and must exit 0 with nothing left running.

The second run adds deploy/compose.curve.yml (CURVE keys on every socket), with a keys
folder made by `dora-zmq keys` mounted where the override says.
"""

from __future__ import annotations

import re
import shutil
import signal
import time
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlparse

import pytest

from dora_zmq.descriptor import load_dataflow
from dora_zmq.testing import DataflowProcess, leaked_processes
from multihost.netns import Host, Network, netns_unavailable

from ._compose import (
    CURVE_OVERRIDE,
    MULTI_YML,
    REPO,
    dataflow_mount,
    dora_services,
    load_compose,
    mount,
    start_order,
    traces_through,
)

pytestmark = pytest.mark.netns

ETC_NETNS = Path("/etc/netns")
SINK = Path(__file__).with_name("otlp_sink.py")


@pytest.fixture
def compose_hosts() -> Iterator[dict[str, Host]]:
    """One namespace host per service this test runs, each resolving every service's name."""
    why = netns_unavailable()
    if why:
        pytest.skip(why)
    services = ["jaeger", *dora_services(load_compose())]
    created_etc = not ETC_NETNS.exists()
    net = Network()
    hosts: dict[str, Host] = {}
    try:
        for name in services:
            hosts[name] = net.add_host(name)
        table = "127.0.0.1 localhost\n::1 localhost\n" + "".join(f"{h.ip} {name}\n" for name, h in hosts.items())
        for host in hosts.values():
            folder = ETC_NETNS / host.ns
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "hosts").write_text(table)
        yield hosts
    finally:
        net.close()
        for host in hosts.values():
            shutil.rmtree(ETC_NETNS / host.ns, ignore_errors=True)
        if created_etc:
            try:
                ETC_NETNS.rmdir()  # only if we made it and nobody else uses it now
            except OSError:
                pass


def _seconds(duration: str) -> float:
    return float(duration.rstrip("s"))


@pytest.mark.timeout(90)
@pytest.mark.parametrize("curve", [False, True], ids=["plain", "curve"])
def test_compose_services_run_the_example_across_hosts(
    curve: bool, compose_hosts: dict[str, Host], dora: Callable[..., DataflowProcess], tmp_path: Path
) -> None:
    compose = load_compose(*([CURVE_OVERRIDE] if curve else []))
    services: dict[str, dict[str, Any]] = compose["services"]
    ours = dora_services(compose)

    # The bind mounts: the same copy of ./dataflows (and ./keys) at the same path everywhere.
    source, target = dataflow_mount(services["start"])
    mounted = tmp_path / "dataflows"
    shutil.copytree(REPO / source, mounted, ignore=shutil.ignore_patterns("out", "__pycache__"))
    paths = {target: mounted}
    if curve:
        keys = tmp_path / "keys"
        assert dora("keys", str(keys)).wait(30).returncode == 0
        paths[mount(services["start"], "./keys")] = keys

    def subst(text: str) -> str:
        for container_path, local in paths.items():
            text = text.replace(container_path, str(local))
        return text

    def run(name: str, args: list[str], env: dict[str, str] | None = None) -> DataflowProcess:
        assert args[0] == "dora-zmq", args
        # The image's WORKDIR is the mount point (checked in test_dockerfile.py).
        return dora(*[subst(a) for a in args[1:]], prefix=compose_hosts[name].prefix, env=env, cwd=mounted)

    # Jaeger's stand-in, at the host and port the services are configured with.
    otlp = urlparse(ours["coordinator"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert otlp.hostname == "jaeger"
    sink = dora(python_args=[str(SINK), str(otlp.port)], prefix=compose_hosts["jaeger"].prefix)
    sink.wait_for_line("^listening$")

    def env_of(name: str) -> dict[str, str]:
        return {k: subst(str(v)) for k, v in ours[name].get("environment", {}).items()}

    procs: dict[str, DataflowProcess] = {}
    order = [name for name in start_order(services) if name in ours]
    for name in order:
        service = ours[name]
        for dep, how in service.get("depends_on", {}).items():
            if how["condition"] == "service_healthy":
                _wait_healthy(dep, ours[dep], run, env_of(dep))
        procs[name] = run(name, service["command"], env_of(name))
    if curve:
        # A client without the keys, next to `start`: the coordinator must not answer it.
        intruder = dora(
            "list",
            prefix=compose_hosts["start"].prefix,
            env={"DORA_ZMQ_COORDINATOR": env_of("start")["DORA_ZMQ_COORDINATOR"]},
        )

    result = procs["start"].wait(60)
    daemon_logs = "\n".join(p.output for n, p in procs.items() if n != "start")
    assert result.returncode == 0, result.output + "\n" + daemon_logs

    count = int(load_dataflow(MULTI_YML).node("camera").env["COUNT"])
    for line in (
        f"camera: sent {count} frames",
        f"detector: handled {count} frames",
        f"display: {count} boxes, {count} correct, lost 0",
    ):
        assert line in result.stdout, result.output
    assert "finished" in result.stderr, result.output

    # Traces: every node and the lifecycle services reported to "jaeger", and each frame is
    # one trace through the camera on "cam", the detector on "compute" and back.
    machines = load_dataflow(MULTI_YML).machines()
    for service in ["camera", "detector", "display", "dora-coordinator", *(f"dora-daemon-{m}" for m in machines)]:
        sink.wait_for_line(rf"^span {re.escape(service)} ", timeout=15)
    frames = _wait_for(lambda: traces_through(list(sink.stdout_lines), {"camera", "detector", "display"}), count)
    assert frames == count, sink.output
    if curve:
        refused = intruder.wait(30)
        assert refused.returncode == 1 and "no coordinator answered" in refused.stderr, refused.output

    # `docker compose down`: SIGTERM in reverse dependency order; each ends within its grace.
    for name in reversed(order):
        proc = procs[name]
        if proc.proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        stopped = proc.wait(_seconds(ours[name]["stop_grace_period"]))
        assert stopped.returncode == 0, f"{name} did not stop cleanly:\n{stopped.output}"
        assert not leaked_processes(proc.tag), f"{name} left processes behind"
    sink.send_signal(signal.SIGTERM)
    assert sink.wait(10).returncode == 0


def _wait_healthy(name: str, service: dict[str, Any], run: Callable[..., DataflowProcess], env: dict[str, str]) -> None:
    """What `condition: service_healthy` waits for: the healthcheck, in the service's environment."""
    check = service["healthcheck"]
    assert check["test"][0] == "CMD", "run without a shell, as the test does"
    for attempt in range(int(check["retries"])):
        if run(name, check["test"][1:], env).wait(_seconds(check["timeout"]) + 5).returncode == 0:
            return
        if attempt + 1 < int(check["retries"]):
            # As compose does: the next try after `interval` (the check itself says no at once).
            time.sleep(_seconds(check["interval"]))
    raise AssertionError(f"{name} never became healthy")


def _wait_for(measure: Callable[[], int], want: int, timeout: float = 10.0) -> int:
    """Poll ``measure()`` until it reaches ``want``: the sink's lines are read by a thread."""
    deadline = time.monotonic() + timeout
    while (got := measure()) < want and time.monotonic() < deadline:
        time.sleep(0.05)
    return got
