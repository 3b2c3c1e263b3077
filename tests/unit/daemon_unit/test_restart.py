"""The restart decisions of ``restart_policy`` (dora-rs 1.1's rules, our default bound)."""

from __future__ import annotations

from dora_zmq.daemon._restart import DEFAULT_MAX_RESTARTS, RestartState
from dora_zmq.descriptor import RestartSpec


def _decide(state: RestartState, failed: bool = True, now: float = 0.0, **kw: bool):  # type: ignore[no-untyped-def]
    return state.decide(failed, now, stopping=kw.get("stopping", False), inputs_closed=kw.get("inputs_closed", False))


def test_policies() -> None:
    assert not _decide(RestartState(RestartSpec("never"))).restart
    assert not _decide(RestartState(RestartSpec("on-failure")), failed=False).restart
    assert _decide(RestartState(RestartSpec("on-failure"))).restart
    assert _decide(RestartState(RestartSpec("always")), failed=False).restart


def test_no_restart_when_stopping_or_inputs_closed() -> None:
    assert "stopping" in _decide(RestartState(RestartSpec("always")), stopping=True).why
    assert "inputs are closed" in _decide(RestartState(RestartSpec("always")), inputs_closed=True).why


def test_max_restarts_and_count() -> None:
    state = RestartState(RestartSpec("on-failure", max_restarts=2))
    assert [_decide(state).restart for _ in range(3)] == [True, True, False]
    assert state.count == 2
    assert "gave up after 2 restart(s) (max_restarts)" in _decide(state).why


def test_default_bound_and_unlimited() -> None:
    bounded = RestartState(RestartSpec("always"))
    assert sum(_decide(bounded).restart for _ in range(DEFAULT_MAX_RESTARTS + 5)) == DEFAULT_MAX_RESTARTS
    unlimited = RestartState(RestartSpec("always", max_restarts=0))
    assert all(_decide(unlimited).restart for _ in range(100))


def test_window_resets_the_count() -> None:
    state = RestartState(RestartSpec("on-failure", max_restarts=1, window_s=10.0))
    assert _decide(state, now=0.0).restart
    assert not _decide(state, now=5.0).restart
    assert _decide(state, now=20.0).restart


def test_delay_doubles_up_to_the_cap() -> None:
    state = RestartState(RestartSpec("always", max_restarts=0, delay_s=0.5, max_delay_s=3.0))
    assert [_decide(state).delay_s for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
