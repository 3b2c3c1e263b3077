"""OpenTelemetry for dataflows: W3C context in message metadata, spans per input and output.

Off unless configured, and then nearly free: with no ``OTEL_*`` exporter variables set (or
``OTEL_SDK_DISABLED=true``, or ``OTEL_TRACES_EXPORTER=none``), :func:`setup_tracing` returns
None and the node's hot path pays one ``is None`` test. On, each process gets its own
``TracerProvider`` (service name = ``OTEL_SERVICE_NAME`` or the node id) exporting over
OTLP/HTTP (``OTEL_EXPORTER_OTLP_ENDPOINT``, e.g. ``http://jaeger:4318``) or to the console.

Context travels in dora's metadata key ``open_telemetry_context`` as ``key:value`` entries
(``traceparent:00-...``), written ``\\n``-separated and read with ``\\n`` or ``;`` (older dora).
It is produced by the W3C TraceContext propagator only, not the global one (no baggage).

The parent rule for ``send_output``:

* metadata carrying the context of the input being handled (dora's idiom:
  ``send_output(id, data, event["metadata"])``) -> child of that input's consumer span;
* metadata carrying another context -> child of that context;
* no context in the metadata -> child of the last input handled (a timer tick's span starts a
  new trace, so a source's outputs each start their own trace);
* nodes with several inputs add span links to the latest message of each other input (fan-in).
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any, Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ._wire import OTEL_CONTEXT_KEY

__all__ = [
    "LifecycleTracer",
    "NodeTracing",
    "TracingConfig",
    "decode_context",
    "encode_context",
    "setup_tracing",
    "shutdown_tracing",
    "tracing_config",
]

log = logging.getLogger(__name__)

_PROPAGATOR = TraceContextTextMapPropagator()
_EXPORT_TIMEOUT_S = 2.0  # a dead collector must never hold a node up for long


def encode_context(carrier: Mapping[str, str]) -> str:
    """``{"traceparent": v}`` -> ``"traceparent:v"`` (entries joined by newlines)."""
    return "\n".join(f"{k}:{v}" for k, v in carrier.items())


def decode_context(text: str) -> dict[str, str]:
    """Inverse of :func:`encode_context`; also reads the older ``;``-separated form."""
    carrier = {}
    for entry in text.replace(";", "\n").split("\n"):
        key, sep, value = entry.partition(":")
        if sep and key.strip():
            carrier[key.strip()] = value.strip()
    return carrier


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


def setup_tracing(service: str, attributes: Mapping[str, Any] | None = None) -> trace.TracerProvider | None:
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
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service, "host.name": socket.gethostname(), **(attributes or {})})
    _quiet_sdk_logs()
    provider = TracerProvider(resource=resource)
    if config.exporter == "console":
        exporter: Any = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(timeout=_EXPORT_TIMEOUT_S)
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=8192, schedule_delay_millis=500, export_timeout_millis=_EXPORT_TIMEOUT_S * 1000)
    )
    trace.set_tracer_provider(provider)
    _process_provider = provider
    return provider


_process_provider: Any = None


class _RateLimit(logging.Filter):
    """Lets one record per message text through every ``interval`` seconds.

    With a collector down, the SDK logs a warning for every span it drops and every retry:
    thousands of lines per second in the node's log, and real CPU time on the hot path.
    """

    def __init__(self, interval: float = 30.0) -> None:
        super().__init__()
        self._interval = interval
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        import time

        key = str(record.msg)[:60]
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
        provider.force_flush(int(_EXPORT_TIMEOUT_S * 1000))
        provider.shutdown()
    except Exception:  # noqa: BLE001 - a failing exporter must not fail the node's exit
        log.warning("could not flush traces", exc_info=True)


class NodeTracing:
    """Spans of one node: a consumer span per input handled, a producer span per output sent."""

    def __init__(self, provider: Any, node_id: str, dataflow_id: str, machine: str) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("dora_zmq")
        self._attrs = {"dora.node_id": node_id, "dora.dataflow_id": dataflow_id, "dora.machine": machine}
        self._node = node_id
        self._current: Any = None  # the consumer span of the input being handled
        self._current_input = ""
        self._current_text: str | None = None
        self._token: Any = None
        self._latest: dict[str, Any] = {}  # input id -> span context of its latest message

    def on_event(self, event: dict[str, Any]) -> None:
        """Called when ``next()`` returns: ends the previous input span, starts this one's."""
        self._end_current()
        if event.get("type") != "INPUT":
            return
        metadata = event.get("metadata") or {}
        text = metadata.get(OTEL_CONTEXT_KEY)
        parent = _PROPAGATOR.extract(decode_context(text)) if text else otel_context.Context()
        value = event.get("value")
        attrs = dict(self._attrs, **{"dora.input_id": event.get("id", ""), "messaging.message.body.size": _size(value)})
        span = self._tracer.start_span(f"{self._node}/{event.get('id')}", context=parent, kind=SpanKind.CONSUMER, attributes=attrs)
        self._current = span
        self._current_input = str(event.get("id"))
        self._current_text = text
        self._latest[str(event.get("id"))] = span.get_span_context()
        self._token = otel_context.attach(trace.set_span_in_context(span))

    def on_send(self, output_id: str, metadata: Mapping[str, Any] | None, size: int) -> dict[str, Any]:
        """Open and close the producer span; returns metadata carrying its context."""
        text = metadata.get(OTEL_CONTEXT_KEY) if metadata else None
        if self._current is not None and (text is None or text == self._current_text):
            parent = trace.set_span_in_context(self._current)
        elif text:
            parent = _PROPAGATOR.extract(decode_context(text))
        else:
            parent = otel_context.get_current()
        # Fan-in: the other inputs' latest messages contributed too; link them.
        links = [Link(ctx) for key, ctx in self._latest.items() if key != self._current_input]
        attrs = dict(self._attrs, **{"dora.output_id": output_id, "messaging.message.body.size": size})
        span = self._tracer.start_span(f"{self._node}/{output_id}", context=parent, kind=SpanKind.PRODUCER, attributes=attrs, links=links)
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        span.end()
        out = dict(metadata) if metadata else {}
        out[OTEL_CONTEXT_KEY] = encode_context(carrier)
        return out

    def _end_current(self) -> None:
        if self._current is not None:
            if self._token is not None:
                try:
                    otel_context.detach(self._token)
                except ValueError:  # detached from another context; harmless
                    pass
                self._token = None
            self._current.end()
            self._current = None
            self._current_text = None

    def close(self) -> None:
        """End the open span and flush everything to the exporter (bounded)."""
        self._end_current()
        shutdown_tracing(self._provider)


def _size(value: Any) -> int:
    try:
        return int(value.nbytes) if value is not None else 0
    except (AttributeError, TypeError):
        return 0


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
        ctx = _PROPAGATOR.extract(decode_context(parent)) if parent else otel_context.Context()
        attrs = {"dora.role": self._role, **{f"dora.{k}": v for k, v in attributes.items() if v is not None}}
        return self._tracer.start_span(name, context=ctx, attributes=attrs)

    def context_of(self, span: Any) -> str:
        """The span's context as metadata text, to parent spans in another process."""
        if span is None:
            return ""
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
