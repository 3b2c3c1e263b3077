"""OpenTelemetry for dataflows: W3C context in message metadata, spans per input and output.

Off unless configured, and then nearly free: with no ``OTEL_*`` exporter variables set (or
``OTEL_SDK_DISABLED=true``, or ``OTEL_TRACES_EXPORTER=none``), :func:`setup_tracing` returns
None and the node's hot path pays one ``is None`` test. On, each process gets its own
``TracerProvider`` (service name = ``OTEL_SERVICE_NAME`` or the node id) exporting over
OTLP/HTTP (``OTEL_EXPORTER_OTLP_ENDPOINT``, e.g. ``http://jaeger:4318``) or to the console.

Context travels in dora's metadata key ``open_telemetry_context`` as ``key:value`` entries
(``traceparent:00-...``), written ``\\n``-separated and read with ``\\n`` or ``;`` (older dora).
It is the W3C TraceContext format only (what ``TraceContextTextMapPropagator`` writes and
reads, not the global propagator: no baggage); :func:`format_context` and
:func:`parse_context` write and read it directly.

The parent rule for ``send_output``:

* metadata carrying the context of the input being handled (dora's idiom:
  ``send_output(id, data, event["metadata"])``) -> child of that input's consumer span;
* metadata carrying another context -> child of that context;
* no context in the metadata -> child of the last input handled (a timer tick's span starts a
  new trace, so a source's outputs each start their own trace);
* nodes with several inputs add span links to the latest message of each other input (fan-in).

Cost per hop (``on_send`` in the sender + ``on_event`` in the receiver): a node's spans are
the SDK's, but made without its per-span generality, and turned into ``ReadableSpan`` s for the
batch processor by a thread, off the message path (see :class:`_LeanSpans`). With paced
messages between two processes every step runs with cold caches and costs about the memory it
touches, so the message path is written flat, sets the context variable directly, reads a
child's traceparent from the parent's metadata text, and pops span ids (with their hex text),
a source's trace ids (with theirs) and blank consumer spans that the feeding thread made ahead
(``python -m tests.tracing.stage_costs`` prints each stage's cost, hot and with cold caches:
every call, check or object touched costs about a microsecond then; an ``isinstance`` against
an ABC such as ``Span`` nearly two). Measured on a 2-core VM, messages
5 ms apart, traced and untraced messages alternating in the same run (median of 12 runs): about
+24 µs per hop (+60 µs before these steps; 360 µs with ``tracer.start_span``); about 6 µs in
a hot loop. No thread wakes per message: the feeding thread runs every 0.5 s (or at 1024
waiting spans). The message size attribute is the array's total buffer size (O(1); ``nbytes``
walks the array and cost a third of that).

Export cost (what bounds a burst): with the OTLP/HTTP exporter, the feeding thread writes the
spans straight to OTLP protobuf bytes (the per-name/attribute parts written once by the SDK's
own encoder, then per span only ids, times and size packed; ``_otlp``) and sends a request per
4096 spans or per second through the exporter's HTTP client: about 2 µs a producer span, 3 µs
a consumer span and 1 µs of request, against about 40 µs through ``ReadableSpan`` s, the batch
processor and ``encode_spans`` (a protobuf object tree per span) that ran in the sending and
receiving processes, competing for the GIL. Another exporter (console, or one of the user's)
gets ``ReadableSpan`` s through the batch processor as before. Every message is traced; to keep
fewer traces, the SDK's standard sampler variables work (``OTEL_TRACES_SAMPLER=
parentbased_traceidratio``, ``OTEL_TRACES_SAMPLER_ARG=0.01``: one source message in 100 is
traced through the whole graph, as downstream nodes follow the parent's decision), but spans
then take the SDK's general path (``tracer.start_span``), cheap only for the traces left out.

Modules: ``_setup`` (the provider from ``OTEL_*``), ``_context`` (the metadata text),
``_lifecycle`` (coordinator and daemon spans), ``_node`` (:class:`NodeTracing`), and its fast
path: ``_lean`` (a tracer's cheap spans), ``_span`` (their type), ``_feeder`` (the queue of
finished spans and its thread), ``_traceparent`` (the plain metadata text, sliced), ``_otlp``
(OTLP bytes written directly) and ``_sdk``, the only module that touches OpenTelemetry's
private names (the range of releases it is tested with is pinned in ``pyproject.toml``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:
    from ._context import decode_context, encode_context, format_context, parse_context
    from ._lifecycle import LifecycleTracer
    from ._node import NodeTracing
    from ._setup import TracingConfig, setup_tracing, shutdown_tracing, tracing_config

__all__ = [
    "LifecycleTracer",
    "NodeTracing",
    "TracingConfig",
    "decode_context",
    "encode_context",
    "format_context",
    "parse_context",
    "setup_tracing",
    "shutdown_tracing",
    "tracing_config",
]

# name -> the submodule that defines it, imported when the name is first asked for (PEP 562):
# a coordinator or daemon with tracing off imports neither OpenTelemetry nor pyarrow.
_LAZY = {
    "LifecycleTracer": "._lifecycle",
    "NodeTracing": "._node",
    "TracingConfig": "._setup",
    "decode_context": "._context",
    "encode_context": "._context",
    "format_context": "._context",
    "parse_context": "._context",
    "setup_tracing": "._setup",
    "shutdown_tracing": "._setup",
    "tracing_config": "._setup",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
