"""``NodeTracing``: a consumer span per input handled, a producer span per output sent."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import ContextVar
from time import time_ns
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanContext, SpanKind

from .._wire import OTEL_CONTEXT_KEY
from . import _sdk
from ._context import format_context, parse_context
from ._lean import _LeanSpans
from ._setup import shutdown_tracing

log = logging.getLogger(__name__)
_SIZE_KEY = _sdk.SIZE_KEY
_CURRENT_SPAN = _sdk.SPAN_KEY  # the Context key of the current span


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
        self._current_input = ""  # the input of the last INPUT event
        self._last_span: Any = None  # the consumer span of that event (not cleared when it ends)
        self._current_text: str | None = None
        self._token: Any = None
        self._latest: dict[str, Any] = {}  # input id -> consumer span of its latest message (but _current_input's)
        self._fan_in: tuple[Link, ...] | None = None  # links of the outputs sent now (cached)
        self._inputs: dict[Any, tuple[str, dict[str, Any], str]] = {}  # id -> span name, attributes, str(id)
        self._outputs: dict[str, tuple[str, dict[str, Any]]] = {}  # id -> span name, attributes
        self._parsed: tuple[Any, Any] = (None, None)  # the last context text read, and its span context
        self._lean = _LeanSpans.create(self._tracer)
        self._var = _sdk.context_var()

    def on_event(self, event: dict[str, Any]) -> None:
        """Called when ``next()`` returns: ends the previous input span, starts this one's."""
        # The message path. Every step of a paced message runs with cold caches, and costs
        # about the memory it touches: so this sets the context variable directly and takes
        # what the feeding thread made ahead (see _LeanSpans.input_span).
        lean = self._lean
        var = self._var
        # A node's events are dicts (Event: its get, a Python method, differs for "data" only).
        get = dict.get if isinstance(event, dict) else type(event).get
        is_input = get(event, "type") == "INPUT"
        now = time_ns()  # the end of the previous input span, and the start of this one
        span = self._current
        if span is not None:
            self._current = None
            self._current_text = None
            token = self._token
            if token is not None:
                self._token = None
                try:
                    var.reset(token)  # type: ignore[union-attr]  # what otel_context.detach(token) comes to
                except (AttributeError, ValueError, RuntimeError):  # no variable, or a token of another context
                    otel_context.detach(token)  # the API's way (it reports a bad token)
            if lean is not None:
                lean.end_input(span, now)
            else:
                span.end()
        if not is_input:
            return
        input_id = get(event, "id")
        spec = self._inputs.get(input_id)
        if spec is None:
            spec = self._input_spec(input_id, event)
        name, attrs, key = spec
        metadata = get(event, "metadata")
        text = metadata.get(OTEL_CONTEXT_KEY) if metadata else None
        value = get(event, "value")
        try:
            size = int(value.get_total_buffer_size()) if value is not None else 0  # O(1), unlike nbytes
        except (AttributeError, TypeError):
            size = 0
        context = None
        if lean is None:
            attrs = attrs.copy()
            attrs[_SIZE_KEY] = size
            span = self._sdk_start(name, SpanKind.CONSUMER, self._parse(text) if text else None, attrs)
        else:
            span, context = lean.input_span(name, attrs, size, text, now)
        self._current = span
        self._current_text = text
        if key != self._current_input:  # another input than last time: the fan-in links change
            if self._last_span is not None:
                self._latest[self._current_input] = self._last_span
            self._current_input = key
            self._fan_in = None
        self._last_span = span
        if var is None:
            self._token = otel_context.attach(trace.set_span_in_context(span))
            return
        # What attach(set_span_in_context(span)) does, without its layers.
        base = var.get()
        if context is None or base:
            context = Context({**base, _CURRENT_SPAN: span})
        self._token = var.set(context)

    def _input_spec(self, input_id: Any, event: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
        """An input's span name, attributes (without the size) and key, made once."""
        base = dict(self._attrs, **{"dora.input_id": event.get("id", "")})
        spec = self._inputs[input_id] = (f"{self._node}/{input_id}", base, str(input_id))
        return spec

    def on_send(self, output_id: str, metadata: Mapping[str, Any] | None, size: int) -> dict[str, Any]:
        """Open and close the producer span; returns metadata carrying its context."""
        text = metadata.get(OTEL_CONTEXT_KEY) if metadata else None
        current = self._current
        if current is not None and (text is None or text == self._current_text):
            parent = current  # the input being handled
        elif text:
            parent = self._parse(text)
        else:  # the current span (a user's, or none: a root), read as get_current_span does
            var = self._var
            span = var.get().get(_CURRENT_SPAN) if var is not None else trace.get_current_span()
            parent = span.get_span_context() if span is not None and isinstance(span, trace.Span) else None
        # Fan-in: the other inputs' latest messages contributed too; link them.
        links = self._fan_in
        if links is None:
            others = (span for key, span in self._latest.items() if key != self._current_input)
            links = self._fan_in = tuple(Link(span.get_span_context()) for span in others)
        spec = self._outputs.get(output_id)
        if spec is None:
            output_attrs: dict[str, Any] = dict(self._attrs, **{"dora.output_id": output_id})
            spec = self._outputs[output_id] = (f"{self._node}/{output_id}", output_attrs)
        name, attrs = spec
        out = dict(metadata) if metadata else {}
        lean = self._lean
        if lean is None:
            if parent is current and current is not None:
                parent = current.get_span_context()
            attrs = attrs.copy()
            attrs[_SIZE_KEY] = size
            span = self._sdk_start(name, SpanKind.PRODUCER, parent, attrs, links)
            span.end()
            out[OTEL_CONTEXT_KEY] = format_context(span.get_span_context())
            return out
        out[OTEL_CONTEXT_KEY] = lean.produce(name, attrs, size, parent, links)
        return out

    def _parse(self, text: str) -> Any:
        """:func:`parse_context`, remembering the last text (a node resending stored metadata)."""
        last, context = self._parsed
        if text != last:
            context = parse_context(text)
            self._parsed = (text, context)
        return context

    def _sdk_start(
        self, name: str, kind: SpanKind, parent: SpanContext | None, attrs: dict[str, Any], links: tuple[Link, ...] = ()
    ) -> Any:
        """A span from ``tracer.start_span`` (when :class:`_LeanSpans` cannot be used)."""
        context = otel_context.Context()
        if parent is not None:
            context = trace.set_span_in_context(trace.NonRecordingSpan(parent))
        return self._tracer.start_span(name, context=context, kind=kind, attributes=attrs, links=list(links))

    def _end_current(self) -> None:
        if self._current is not None:
            if self._token is not None:
                _detach(self._var, self._token)
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


def _detach(var: ContextVar[Any] | None, token: Any) -> None:
    """``otel_context.detach(token)``: straight to the context variable when possible."""
    if var is not None:
        try:
            var.reset(token)  # what otel_context.detach(token) comes to
            return
        except (AttributeError, ValueError, RuntimeError):  # no variable, or a token of another context
            pass
    otel_context.detach(token)  # the API's way (it reports a bad token)
