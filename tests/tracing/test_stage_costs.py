"""The per-stage cost tool (``stage_costs``) keeps running: a few messages, hot and cold."""

from __future__ import annotations

import pytest

from .otlp_receiver import OtlpReceiver
from .stage_costs import STAGES, burst_cpu_per_hop, stage_costs


@pytest.mark.timeout(120)
def test_stage_costs_measure_every_stage() -> None:
    with OtlpReceiver(decode=False) as sink:
        for cold in (False, True):
            costs = stage_costs(sink.endpoint, 20, cold)
            assert set(costs) == set(STAGES)
            assert costs["on_send"] > 0 and costs["on_event"] > 0
            floor = stage_costs(sink.endpoint, 20, cold, floor=True)  # the Python floor (FloorTracing)
            assert set(floor) == set(STAGES) and floor["on_send"] > 0 and floor["on_event"] > 0
        assert burst_cpu_per_hop(sink.endpoint, 200) > 0
        assert sink.requests >= 1  # the spans were exported
