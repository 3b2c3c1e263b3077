"""Spans for the coordinator's and daemons' lifecycle steps.

With tracing off (no ``OTEL_*`` configuration) nothing of OpenTelemetry is imported: the
coordinator and the daemons import this module at start, and every method is then a no-op.
"""

from __future__ import annotations

import logging
from typing import Any

from ._setup import _EXPORT_TIMEOUT_S, setup_tracing

log = logging.getLogger(__name__)


class LifecycleTracer:
    """Spans for the coordinator's and daemons' lifecycle steps (start, spawn, stop)."""

    def __init__(self, service: str, role: str) -> None:
        provider = setup_tracing(service, {"dora.role": role})
        self._provider = provider
        self._tracer = provider.get_tracer(f"dora_zmq.{role}") if provider else None
        self._role = role

    @property
    def enabled(self) -> bool:
        """False when tracing is off (every method is then a cheap no-op)."""
        return self._tracer is not None

    def start(self, name: str, parent: str = "", **attributes: Any) -> Any:
        """Start a span (child of the ``parent`` context text, if given); None when off."""
        if self._tracer is None:
            return None
        from opentelemetry import context as otel_context

        from ._context import _PROPAGATOR, decode_context

        ctx = _PROPAGATOR.extract(decode_context(parent)) if parent else otel_context.Context()
        attrs = {"dora.role": self._role, **{f"dora.{k}": v for k, v in attributes.items() if v is not None}}
        return self._tracer.start_span(name, context=ctx, attributes=attrs)

    def context_of(self, span: Any) -> str:
        """The span's context as metadata text, to parent spans in another process."""
        if span is None:
            return ""
        from opentelemetry import trace

        from ._context import _PROPAGATOR, encode_context

        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        return encode_context(carrier)

    def instant(self, name: str, parent: str = "", **attributes: Any) -> None:
        """A span that starts and ends now (an event in the lifecycle)."""
        span = self.start(name, parent, **attributes)
        if span is not None:
            span.end()

    def close(self) -> None:
        """Flush (bounded)."""
        if self._provider is not None:
            self._provider.force_flush(int(_EXPORT_TIMEOUT_S * 1000))
