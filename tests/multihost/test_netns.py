"""The namespace helper cleans up after itself, also when its process is killed."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .netns import Network, list_namespaces, netns_unavailable

pytestmark = [pytest.mark.netns, pytest.mark.timeout(60)]

PREFIX = "dzf14t"  # these tests' own prefix: stale cleanup never looks at other tests' namespaces
TESTS = Path(__file__).resolve().parent.parent

HOLDER = f"""
import sys, time
sys.path.insert(0, {str(TESTS)!r})
from multihost.netns import Network
net = Network(prefix={PREFIX!r})
net.add_host("a")
try:
    print(" ".join([net.switch, *(h.ns for h in net.hosts.values())]), flush=True)
    while True:
        time.sleep(60)  # held until the test signals it
finally:
    net.close()
"""


@pytest.fixture(autouse=True)
def _needs_netns() -> None:
    why = netns_unavailable()
    if why:
        pytest.skip(why)


def _hold() -> tuple[subprocess.Popen[str], list[str]]:
    """A process holding a network of one host, and the names of its namespaces."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        names = proc.stdout.readline().split()
        assert len(names) == 2 and all(n.startswith(f"{PREFIX}-{proc.pid}-") for n in names), names
        assert set(names) <= set(list_namespaces())
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, names


def test_sigterm_deletes_the_namespaces() -> None:
    proc, names = _hold()
    try:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
    assert not set(names) & set(list_namespaces())


def test_a_new_network_removes_what_a_killed_process_left() -> None:
    proc, names = _hold()
    proc.kill()  # SIGKILL: no cleanup in the holder
    proc.wait(timeout=30)
    assert set(names) <= set(list_namespaces())
    with Network(prefix=PREFIX) as net:
        assert sorted(net.stale_removed) == sorted(names)
        assert net.switch in list_namespaces()
    assert not any(n.startswith(f"{PREFIX}-") for n in list_namespaces())
