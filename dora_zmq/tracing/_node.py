"""``NodeTracing``: a consumer span per input handled, a producer span per output sent."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, SpanKind

from .._wire import OTEL_CONTEXT_KEY

from ._context import format_context, parse_context
from ._lean import _SIZE_KEY, _LeanSpans
from ._setup import shutdown_tracing

log = logging.getLogger(__name__)



class NodeTracing:
    """Spans of one node: a consumer span per input handled, a producer span per output sent.

    The spans are what ``tracer.start_span`` would make (ids, parent, flags, trace state,
    attributes, links, resource, scope), but with the provider :func:`setup_tracing` makes
    (default sampler, batch processors) they are built by :class:`_LeanSpans`: only what the
    next hop needs (the metadata text) is computed while the message waits; the rest is done
    off the message path. Otherwise they come from ``tracer.start_span``.
    """

    def __init__(self, provider: Any, node_id: str, dataflow_id: str, machine: str) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("dora_zmq")
        self._attrs = {"dora.node_id": node_id, "dora.dataflow_id": dataflow_id, "dora.machine": machine}
        self._node = node_id
        self._current: Any = None  # the consumer span of the input being handled
        self._current_input = ""
        self._current_text: str | None = None
        self._token: Any = None
        self._latest: dict[str, Any] = {}  # input id -> consumer span of its latest message
        self._links: tuple[Link, ...] | None = None  # links of the outputs sent now (cached)
        self._inputs: dict[Any, tuple[str, dict[str, Any], str]] = {}  # id -> span name, attributes, str(id)
        self._outputs: dict[str, tuple[str, dict[str, Any]]] = {}  # id -> span name, attributes
        self._parsed: tuple[Any, Any] = (None, None)  # the last context text read, and its span context
        self._lean = _LeanSpans.create(self._tracer)

    def on_event(self, event: dict[str, Any]) -> None:
        """Called when ``next()`` returns: ends the previous input span, starts this one's."""
        if self._current is not None:
            self._end_current()
        if event.get("type") != "INPUT":
            return
        input_id = event.get("id")
        spec = self._inputs.get(input_id)
        if spec is None:
            base = dict(self._attrs, **{"dora.input_id": event.get("id", "")})
            spec = self._inputs[input_id] = (f"{self._node}/{input_id}", base, str(input_id))
        name, attrs, key = spec
        metadata = event.get("metadata") or {}
        text = metadata.get(OTEL_CONTEXT_KEY)
        attrs = attrs.copy()
        attrs[_SIZE_KEY] = _size(event.get("value"))
        if self._lean is not None:
            span = self._lean.consume(name, text, attrs)
        else:
            span = self._sdk_start(name, SpanKind.CONSUMER, self._parse(text) if text else None, attrs)
        self._current = span
        self._current_input = key
        self._current_text = text
        self._latest[key] = span
        self._links = None
        self._token = otel_context.attach(trace.set_span_in_context(span))

    def on_send(self, output_id: str, metadata: Mapping[str, Any] | None, size: int) -> dict[str, Any]:
        """Open and close the producer span; returns metadata carrying its context."""
        text = metadata.get(OTEL_CONTEXT_KEY) if metadata else None
        current = self._current
        if current is not None and (text is None or text == self._current_text):
            parent = current.get_span_context()
        elif text:
            parent = self._parse(text)
        else:
            parent = trace.get_current_span().get_span_context()
        # Fan-in: the other inputs' latest messages contributed too; link them.
        links = self._links
        if links is None:
            links = self._links = tuple(Link(span.get_span_context()) for key, span in self._latest.items() if key != self._current_input)
        spec = self._outputs.get(output_id)
        if spec is None:
            spec = self._outputs[output_id] = (f"{self._node}/{output_id}", dict(self._attrs, **{"dora.output_id": output_id}))
        name, attrs = spec
        out = dict(metadata) if metadata else {}
        if self._lean is not None:
            out[OTEL_CONTEXT_KEY] = self._lean.produce(name, attrs, size, parent, links)
        else:
            attrs = attrs.copy()
            attrs[_SIZE_KEY] = size
            span = self._sdk_start(name, SpanKind.PRODUCER, parent, attrs, links)
            span.end()
            out[OTEL_CONTEXT_KEY] = format_context(span.get_span_context())
        return out

    def _parse(self, text: str) -> Any:
        """:func:`parse_context`, remembering the last text (a node resending stored metadata)."""
        last, context = self._parsed
        if text != last:
            context = parse_context(text)
            self._parsed = (text, context)
        return context

    def _sdk_start(self, name: str, kind: SpanKind, parent: SpanContext | None, attrs: dict[str, Any], links: tuple[Link, ...] = ()) -> Any:
        """A span from ``tracer.start_span`` (when :class:`_LeanSpans` cannot be used)."""
        context = trace.set_span_in_context(trace.NonRecordingSpan(parent)) if parent is not None else otel_context.Context()
        return self._tracer.start_span(name, context=context, kind=kind, attributes=attrs, links=list(links))

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
        if self._lean is not None:
            self._lean.close()
        shutdown_tracing(self._provider)


def _size(value: Any) -> int:
    try:
        return int(value.get_total_buffer_size()) if value is not None else 0
    except (AttributeError, TypeError):
        return 0
