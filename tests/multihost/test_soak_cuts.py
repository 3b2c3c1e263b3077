"""The soak with link cuts (benchmarks/soak_cuts.py), short: ~40 s, 3 cuts of 4 s, 50 msg/s.

The same code path as the 10-minute soak (issue 13): a 3-host graph at a steady rate, the
hosts' cables pulled in turn; every loss counted, the run ends by itself, nothing left, and
the services' file descriptors do not grow (memory is only printed: 40 s is too short to
tell a leak from the allocator settling).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .netns import netns_unavailable

pytestmark = pytest.mark.netns

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "soak_cuts.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak_cuts", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(150)
def test_short_soak_with_three_cuts(tmp_path: Path) -> None:
    why = netns_unavailable()
    if why:
        pytest.skip(why)
    soak_cuts = _load()
    res = soak_cuts.soak(minutes=0.6, cut_every=10.0, rate=50.0, cut_for=4.0, sample_every=2.0, work=tmp_path)
    soak_cuts.print_report(res, 2)
    assert not res.problems, res.problems
    assert len(res.cuts) == 3, res.cuts
    assert res.returncode == 0
    # a 4 s cut outlasts the links' 3 s heartbeat timeout: each cut costs messages, all counted
    assert all(cut.lost for cut in res.cuts), res.cuts
    for track in res.tracks:
        if not track.role.startswith("node"):
            _, _, fds_first, fds_late = track.window(2)
            assert fds_late - fds_first <= 4, f"{track.role}: fds {track.fds}"
