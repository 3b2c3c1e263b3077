"""Soak with link cuts (issue 13): a 3-host graph at a steady rate, one host's cable pulled every so often.

    python benchmarks/soak_cuts.py                         # 10 minutes, 100 msg/s, a 5 s cut every minute (root)
    python benchmarks/soak_cuts.py --minutes 1 --cut-every 20 --cut-for 2
    python benchmarks/soak_cuts.py --minutes 0.7 --cut-every 12 --cut-for 5 --daemon-timeout 3   # the defaults' cost

Hosts are network namespaces on a bridge (tests/multihost/netns.py): h1 runs the coordinator,
a daemon and ``sink``; h2 runs ``source``; h3 runs ``forward``. The sink reads the source
directly (h2 -> h1) and through ``forward`` (h2 -> h3 -> h1). The cuts alternate between h2 and
h3. The source sends ``rate * minutes * 60`` messages and ends, so the run ends by itself.

What it checks and prints:
- every loss counted: per input, received + dropped + lost == sent (each node writes its
  counters when it ends);
- per cut: messages lost on each input, when the flow resumed after the link came back
  (``resume_s``: first message after the gap), when the coordinator first reported the host
  (``reported_s`` after the cut: "silent" / "lost", if it did);
- memory (RSS) and open file descriptors of every process (coordinator, daemons, nodes),
  sampled every ``--sample-every`` s: first sample after warm-up, last, and the growth.

Writes ``benchmarks/results/soak-<time>.json``. Exit 1 if an invariant fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dora_zmq.testing import DataflowProcess  # noqa: E402
from tests.multihost.netns import Host, Network, netns_unavailable  # noqa: E402

PORT = 53291
RESULTS = REPO / "benchmarks" / "results"
GAP_S = 0.5  # an input silent this long (at >= 10 msg/s) had its flow interrupted: a gap record

SOURCE = """
    import json, os
    import pyarrow as pa
    from dora_zmq import Node
    node = Node()
    limit, sent = int(os.environ["LIMIT"]), 0
    for event in node:
        if event["type"] == "STOP":
            break
        if event["type"] == "INPUT":
            node.send_output("n", pa.array([sent], type=pa.int64()))
            sent += 1
            if sent == limit:
                break
    with open(os.path.join(os.environ["OUT"], "source.json"), "w") as f:
        json.dump({"sent": {"n": sent}}, f)
"""

FORWARD = """
    import json, os
    from dora_zmq import Node
    node = Node()
    got = 0
    for event in node:
        if event["type"] == "INPUT":
            got += 1
            node.send_output("n", event["value"], event["metadata"])
    counts = {"sent": {"n": got}, "received": {"n": got}, "lost": dict(node.lost), "dropped": dict(node.dropped)}
    with open(os.path.join(os.environ["OUT"], "forward.json"), "w") as f:
        json.dump(counts, f)
"""

# Records each interruption of an input's flow: (input, last arrival before, first after, seq
# before, seq after), arrival times on CLOCK_MONOTONIC, which all namespaces share.
SINK = """
    import json, os, time
    from dora_zmq import Node
    node = Node()
    gap_s = float(os.environ["GAP_S"])
    got, last, gaps = {}, {}, []
    for event in node:
        if event["type"] != "INPUT":
            continue
        now, key = time.monotonic(), event["id"]
        seq = event["value"].to_pylist()[0]
        got[key] = got.get(key, 0) + 1
        if key in last and now - last[key][0] > gap_s:
            gaps.append([key, last[key][0], now, last[key][1], seq])
        last[key] = (now, seq)
    counts = {"received": got, "lost": dict(node.lost), "dropped": dict(node.dropped), "gaps": gaps}
    with open(os.path.join(os.environ["OUT"], "sink.json"), "w") as f:
        json.dump(counts, f)
"""

FLOW = """
nodes:
  - id: source
    path: source.py
    deploy: {{machine: h2}}
    inputs: {{tick: dora/timer/millis/{period_ms}}}
    outputs: [n]
    env: {{OUT: {out}, LIMIT: {limit}}}
  - id: forward
    path: forward.py
    deploy: {{machine: h3}}
    inputs: {{n: {{source: source/n, queue_size: 10000}}}}
    outputs: [n]
    env: {{OUT: {out}}}
  - id: sink
    path: sink.py
    deploy: {{machine: h1}}
    inputs:
      direct: {{source: source/n, queue_size: 10000}}
      forwarded: {{source: forward/n, queue_size: 10000}}
    env: {{OUT: {out}, GAP_S: {gap_s}}}
"""

EDGES = [("source", "n", "forward", "n"), ("source", "n", "sink", "direct"), ("forward", "n", "sink", "forwarded")]


@dataclass
class Cut:
    """One cable pull and what it cost."""

    host: str
    at: float  # monotonic
    seconds: float
    lost: dict[str, int] = field(default_factory=dict)  # input -> messages lost in its gap
    resume_s: dict[str, float] = field(default_factory=dict)  # input -> first arrival after the restore
    silent_before_s: dict[str, float] = field(default_factory=dict)  # input -> last arrival before, from the cut
    reported_s: float | None = None  # the coordinator's first line naming the host, from the cut
    report: str = ""


@dataclass
class Track:
    """RSS and descriptors of one process over the run."""

    role: str
    pid: int
    rss_mb: list[float] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)

    def window(self, skip: int) -> tuple[float, float, int, int]:
        """(RSS MB first, RSS MB late, fds first, fds late): the first sample after ``skip`` (the
        warm-up) and the highest of the last quarter (a process sampled while it exits has
        already closed its sockets: the last sample alone would hide a leak)."""
        rss, fds = self.rss_mb[skip:] or self.rss_mb, self.fds[skip:] or self.fds
        if not rss:
            return 0.0, 0.0, 0, 0
        tail = max(1, len(rss) // 4)
        return rss[0], max(rss[-tail:]), fds[0], max(fds[-tail:])


class LineClock:
    """Timestamps the lines a process prints (polled every 20 ms: the resolution)."""

    def __init__(self, proc: DataflowProcess) -> None:
        self.proc = proc
        self.lines: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        seen = 0
        while not self._stop.wait(0.02):
            lines = self.proc.stderr_lines
            now = time.monotonic()
            self.lines.extend((now, line) for line in lines[seen:])
            seen = len(lines)

    def first_after(self, t: float, *words: str) -> tuple[float, str] | None:
        for at, line in self.lines:
            if at >= t and all(w in line for w in words):
                return at, line
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)


class Sampler:
    """Samples RSS and fds of the services and of every node every ``every`` s."""

    def __init__(self, services: dict[str, DataflowProcess], every: float) -> None:
        self.services, self.every = services, every
        self.tracks: dict[int, Track] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _procs(self) -> list[tuple[str, psutil.Process]]:
        out = []
        for role, svc in self.services.items():
            try:
                p = psutil.Process(svc.proc.pid)
                out.append((role, p))
                out += [(f"node {_node_name(c)} ({role})", c) for c in p.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        return out

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for role, p in self._procs():
                try:
                    rss, fds = p.memory_info().rss / 2**20, p.num_fds()
                except (psutil.NoSuchProcess, psutil.ZombieProcess):
                    continue
                track = self.tracks.setdefault(p.pid, Track(role, p.pid))
                track.rss_mb.append(round(rss, 2))
                track.fds.append(fds)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(self.every + 1)


def _node_name(p: psutil.Process) -> str:
    try:
        cmd = " ".join(p.cmdline())
    except psutil.Error:
        return "?"
    for name in ("source", "forward", "sink"):
        if f"{name}.py" in cmd:
            return name
    return cmd[-40:]


@dataclass
class SoakResult:
    """What ``soak`` found; ``problems`` empty when every invariant held."""

    params: dict[str, Any]
    returncode: int | None
    seconds: float
    counts: dict[str, Any]
    cuts: list[Cut]
    tracks: list[Track]
    left: list[str]
    problems: list[str]
    output_tail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def soak(
    minutes: float,
    cut_every: float,
    rate: float,
    cut_for: float = 5.0,
    daemon_timeout: float = 30.0,
    sample_every: float = 5.0,
    work: Path | None = None,
) -> SoakResult:
    """Run the soak; every process and namespace it makes is gone when it returns."""
    why = netns_unavailable()
    if why:
        raise RuntimeError(why)
    params = {
        "minutes": minutes,
        "cut_every": cut_every,
        "rate": rate,
        "cut_for": cut_for,
        "daemon_timeout": daemon_timeout,
    }
    work = Path(tempfile.mkdtemp(prefix="soak-cuts-", dir=work))
    out = work / "out"
    out.mkdir()
    limit = int(rate * minutes * 60)
    files = {"source.py": SOURCE, "forward.py": FORWARD, "sink.py": SINK}
    for name, text in files.items():
        (work / name).write_text(textwrap.dedent(text).lstrip())
    flow = FLOW.format(period_ms=max(1, round(1000 / rate)), out=out, limit=limit, gap_s=GAP_S)
    (work / "dataflow.yml").write_text(flow.lstrip())
    net = Network(prefix="f13k")
    procs: list[DataflowProcess] = []
    cuts: list[Cut] = []
    problems: list[str] = []
    try:
        hosts = {name: net.add_host(name) for name in ("h1", "h2", "h3")}
        address = f"tcp://{hosts['h1'].ip}:{PORT}"
        env = {"DORA_ZMQ_COORDINATOR": address, "DORA_ZMQ_DAEMON_TIMEOUT": f"{daemon_timeout:g}"}

        def start(host: Host, *args: str) -> DataflowProcess:
            p = DataflowProcess(list(args), prefix=host.prefix, env=env, cwd=work)
            procs.append(p)
            return p

        coordinator = start(hosts["h1"], "coordinator", "--bind", address)
        coordinator.wait_for_line("coordinator listening")
        services = {"coordinator": coordinator}
        for name, host in hosts.items():
            services[f"daemon {name}"] = start(
                host, "daemon", "--machine-id", name, "--bind-data", host.ip, "--advertise", host.ip
            )
        clock = LineClock(coordinator)
        run = start(hosts["h1"], "start", "dataflow.yml", "--name", "soak", "--attach")
        run.wait_for_line(r"started dataflow", timeout=60)
        sampler = Sampler(services, sample_every)
        began = time.monotonic()
        victims = ["h2", "h3"]
        while run.proc.poll() is None:
            next_cut = began + cut_every * (len(cuts) + 1)
            if next_cut + cut_for > began + minutes * 60:
                break
            if _wait_exit(run, next_cut - time.monotonic()):
                break
            cut = Cut(victims[len(cuts) % 2], time.monotonic(), cut_for)
            net.cut(hosts[cut.host])
            try:
                time.sleep(cut_for)  # the outage itself
            finally:
                net.restore(hosts[cut.host])
            cuts.append(cut)
        try:
            result = run.wait(minutes * 60 + 120)
            returncode: int | None = result.returncode
        except TimeoutError as exc:
            problems.append(f"the run did not end: {exc}")
            returncode = None
        seconds = time.monotonic() - began
        sampler.close()
        clock.close()
        left = _wait_nodes_gone(services, 15.0)
        if left:
            problems.append(f"node processes left: {left}")
        counts = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
        problems += _check_counts(counts)
        _attribute(cuts, counts.get("sink", {}).get("gaps", []), clock)
        if returncode != 0:
            problems.append(f"the run exited {returncode}")
        tracks = list(sampler.tracks.values())
        return SoakResult(
            params, returncode, round(seconds, 1), counts, cuts, tracks, left, problems, run.output[-3000:]
        )
    finally:
        for p in reversed(procs):
            p.__exit__(None, None, None)
        net.close()


def _wait_exit(run: DataflowProcess, seconds: float) -> bool:
    """True if ``run`` exited within ``seconds`` (waits on the process, not a sleep)."""
    try:
        run.proc.wait(max(seconds, 0.0))
        return True
    except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired: still running
        return False


def _wait_nodes_gone(services: dict[str, DataflowProcess], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for svc in services.values():
            try:
                left += [" ".join(c.cmdline()) for c in psutil.Process(svc.proc.pid).children(recursive=True)]
            except psutil.Error:
                continue
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)  # polling the process table: there is no event for a grandchild's exit


def _check_counts(counts: dict[str, Any]) -> list[str]:
    problems = []
    for sender, out, receiver, inp in EDGES:
        if sender not in counts or receiver not in counts:
            problems.append(f"counters missing for {sender} -> {receiver}: have {sorted(counts)}")
            continue
        sent = counts[sender]["sent"][out]
        got = counts[receiver]["received"].get(inp, 0)
        lost, dropped = counts[receiver]["lost"].get(inp, 0), counts[receiver]["dropped"].get(inp, 0)
        if got + lost + dropped != sent:
            problems.append(f"{receiver}/{inp}: received {got} + lost {lost} + dropped {dropped} != sent {sent}")
    return problems


def _attribute(cuts: list[Cut], gaps: list[list[Any]], clock: LineClock) -> None:
    """Give each cut the gaps of the sink's inputs that overlap it, and the coordinator's first word on it."""
    for cut in cuts:
        restored = cut.at + cut.seconds
        for key, before, after, seq_before, seq_after in gaps:
            if before <= restored and after >= cut.at:
                cut.lost[key] = cut.lost.get(key, 0) + seq_after - seq_before - 1
                cut.resume_s[key] = round(after - restored, 2)
                cut.silent_before_s[key] = round(before - cut.at, 2)
        said = clock.first_after(cut.at, f"'{cut.host}'")
        if said is not None and said[0] < restored + 10:
            cut.reported_s, cut.report = round(said[0] - cut.at, 2), said[1][-160:]


def print_report(res: SoakResult, skip_samples: int) -> None:
    """Tables on stdout."""
    p = res.params
    print(
        f"soak: {p['minutes']:g} min, {p['rate']:g} msg/s, a {p['cut_for']:g} s cut every {p['cut_every']:g} s, "
        f"DORA_ZMQ_DAEMON_TIMEOUT={p['daemon_timeout']:g}; ran {res.seconds:.0f} s, exit {res.returncode}"
    )
    print(f"{'cut':>3} {'host':<4} {'input':<10} {'lost':>5} {'resume s':>9} {'silent s':>9}  coordinator")
    for i, cut in enumerate(res.cuts, 1):
        keys = sorted(cut.lost) or ["-"]
        for key in keys:
            reported = f"{cut.reported_s:.2f} s: {cut.report[-70:]}" if cut.reported_s is not None else "-"
            print(
                f"{i:>3} {cut.host:<4} {key:<10} {cut.lost.get(key, 0):>5} {cut.resume_s.get(key, float('nan')):>9.2f} "
                f"{cut.silent_before_s.get(key, float('nan')):>9.2f}  {reported}"
            )
    print(
        "counters: "
        + "; ".join(
            f"{recv}/{inp} got {res.counts.get(recv, {}).get('received', {}).get(inp)}"
            f" lost {res.counts.get(recv, {}).get('lost', {}).get(inp)}"
            f" of {res.counts.get(snd, {}).get('sent', {}).get(out)}"
            for snd, out, recv, inp in EDGES
        )
    )
    print(
        f"{'process':<28} {'pid':>7} {'samples':>7} {'RSS MB first':>12} {'late':>7} {'growth':>7}"
        f" {'fds first':>9} {'late':>5}"
    )
    for t in sorted(res.tracks, key=lambda t: t.role):
        r0, r1, f0, f1 = t.window(skip_samples)
        print(f"{t.role:<28} {t.pid:>7} {len(t.rss_mb):>7} {r0:>12.1f} {r1:>7.1f} {r1 - r0:>+7.1f} {f0:>9} {f1:>5}")
    print("problems: " + ("; ".join(res.problems) if res.problems else "none"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--cut-every", type=float, default=60.0, help="seconds between the starts of two cuts")
    ap.add_argument("--cut-for", type=float, default=5.0, help="seconds each cut lasts")
    ap.add_argument("--rate", type=float, default=100.0, help="messages per second")
    ap.add_argument("--daemon-timeout", type=float, default=30.0, help="DORA_ZMQ_DAEMON_TIMEOUT (3 is the default)")
    ap.add_argument("--sample-every", type=float, default=5.0)
    args = ap.parse_args()
    res = soak(args.minutes, args.cut_every, args.rate, args.cut_for, args.daemon_timeout, args.sample_every)
    skip = max(1, int(min(60.0, args.minutes * 6) / args.sample_every))  # warm-up: the first minute (or 10 %)
    print_report(res, skip)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"soak-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps({**res.to_json(), "warmup_samples": skip}, indent=1))
    print(f"wrote {path}")
    return 1 if res.problems else 0


if __name__ == "__main__":
    sys.exit(main())
