"""Fixtures for tests that need several hosts (network namespaces, root)."""

from __future__ import annotations

from typing import Iterator

import pytest

from .netns import Network, netns_unavailable


@pytest.fixture
def network() -> Iterator[Network]:
    """A bridge to add hosts to (``network.add_host(name)``); skips the test without namespaces."""
    why = netns_unavailable()
    if why:
        pytest.skip(why)
    with Network() as net:
        yield net
