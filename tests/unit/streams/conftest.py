"""Shared fixtures for the streams tests: every test must leave no thread behind."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import pytest

from dora_zmq.streams import Composition, CompositionError


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    """Fail the test if it leaves a thread running (compositions must join what they start)."""
    before = set(threading.enumerate())
    yield
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leftover, f"threads left behind: {[t.name for t in leftover]}"


@pytest.fixture
def track() -> Iterator[Callable[[Composition], Composition]]:
    """Register compositions to be stopped at teardown, so a failing test leaves no thread."""
    tracked: list[Composition] = []

    def register(comp: Composition) -> Composition:
        tracked.append(comp)
        return comp

    yield register
    for comp in tracked:
        with contextlib.suppress(CompositionError):  # the test itself checks the errors it expects
            comp.stop()
