"""Tracer provider from the ``OTEL_*`` environment; quiet, bounded export.

OpenTelemetry is imported only once tracing is configured: with it off, a process that asks
(:func:`setup_tracing` returns None) never loads it.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider


log = logging.getLogger(__name__)

_EXPORT_TIMEOUT_S = 2.0  # a dead collector must never hold a node up for long
_FLUSH_AT_EXIT_S = 5.0
# Few, large exports: a request per 4096 spans (or per second) costs less than one per 512,
# and bounds the flush at exit with a dead collector (each failed batch takes about 1 s of
# retries) to 2 batches instead of 16.
_BATCH_QUEUE = 8192  # spans the batch processor keeps (it drops beyond)
_BATCH_SIZE = 4096  # spans per request
_BATCH_DELAY_MS = 1000  # ... or a request per second
_SDK_LOG_EVERY_S = 30.0  # the SDK's per-span and per-retry warnings, at most once per this
_LOG_KEY_CHARS = 60  # warnings are told apart by this much of their text (the rest holds counts, ids)


class TracingConfig:
    """What the ``OTEL_*`` environment asks for."""

    def __init__(self, exporter: str, endpoint: str | None) -> None:
        self.exporter = exporter
        self.endpoint = endpoint


def tracing_config(env: Mapping[str, str] | None = None) -> TracingConfig | None:
    """Read ``OTEL_SDK_DISABLED``, ``OTEL_TRACES_EXPORTER`` and the OTLP endpoints; None = off."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not exporter:
        exporter = "otlp" if endpoint else "none"
    if exporter == "none":
        return None
    if exporter not in ("otlp", "console"):
        log.warning("OTEL_TRACES_EXPORTER=%s is not supported (use otlp, console or none); tracing off", exporter)
        return None
    return TracingConfig(exporter, endpoint)


def setup_tracing(service: str, attributes: Mapping[str, Any] | None = None) -> TracerProvider | None:
    """A tracer provider for this process, or None when tracing is off.

    The provider is also made the global one, so the user's own
    ``opentelemetry.trace.get_tracer(...)`` spans go to the same backend.
    """
    global _process_provider
    if _process_provider is not None:
        return _process_provider
    config = tracing_config()
    if config is None:
        return None
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    service_name = os.environ.get("OTEL_SERVICE_NAME") or service
    resource = Resource.create({"service.name": service_name, "host.name": socket.gethostname(), **(attributes or {})})
    _quiet_sdk_logs()
    provider = TracerProvider(resource=resource)
    if config.exporter == "console":
        exporter: Any = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(timeout=_EXPORT_TIMEOUT_S)
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter,
            max_queue_size=_BATCH_QUEUE,
            max_export_batch_size=_BATCH_SIZE,
            schedule_delay_millis=_BATCH_DELAY_MS,
            export_timeout_millis=_EXPORT_TIMEOUT_S * 1000,
        )
    )
    trace.set_tracer_provider(provider)
    _process_provider = provider
    return provider


_process_provider: TracerProvider | None = None


class _RateLimit(logging.Filter):
    """Lets one record per message text through every ``interval`` seconds.

    With a collector down, the SDK logs a warning for every span it drops and every retry:
    thousands of lines per second in the node's log, and real CPU time on the hot path.
    """

    def __init__(self, interval: float = _SDK_LOG_EVERY_S) -> None:
        super().__init__()
        self._interval = interval
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        import time

        key = str(record.msg)[:_LOG_KEY_CHARS]
        now = time.monotonic()
        if now - self._last.get(key, -self._interval) < self._interval:
            return False
        self._last[key] = now
        return True


def _quiet_sdk_logs() -> None:
    limiter = _RateLimit()
    # Filters are not inherited by child loggers: name the modules that log per span/retry.
    for name in (
        "opentelemetry.sdk._shared_internal",
        "opentelemetry.exporter.otlp.common.http",
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    ):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RateLimit) for f in logger.filters):
            logger.addFilter(limiter)


def shutdown_tracing(provider: Any) -> None:
    """Flush the last spans (bounded) and stop the exporter."""
    try:
        # Longer than one export: on a loaded machine the last batches may need a few
        # requests; a collector that is down fails each one fast (connection refused).
        provider.force_flush(int(_FLUSH_AT_EXIT_S * 1000))
        provider.shutdown()
    except Exception:  # noqa: BLE001 - a failing exporter must not fail the node's exit
        log.warning("could not flush traces", exc_info=True)
