"""Fixtures for tests that need several hosts (network namespaces, root)."""

from __future__ import annotations

from .netns import network  # noqa: F401 - fixture
