"""A node's spans written straight to OTLP protobuf bytes, for the OTLP/HTTP exporter.

What the SDK does per span before a request (measured on a 2-core VM, hot): a ``ReadableSpan``
(9 µs), the batch processor's queue (0.6 µs), and the exporter's ``encode_spans``: a tree of
protobuf objects per span (a ``Span``, a ``KeyValue`` and an ``AnyValue`` per attribute, a
``Status``) and the resource hashed through ``json.dumps`` per span (31 µs). About 40 µs
of Python per span, in the process that sends or receives the message, so a burst ran at
a third of its speed with tracing on.

Here the bytes of a span are written directly (about 2 µs): per span name, kind and
attribute set, the bytes of the name, kind and attributes are made once (by the SDK's own
encoder, from a template span, so they are what it would write); per span only the ids,
the times and the message size are written. The resource and scope (one per tracer) are
written once too. A span this does not know how to write quickly (a user touched it: set
an attribute, added an event, set a status; or it has links with attributes) is made a
``ReadableSpan`` and encoded by the SDK's encoder, and its bytes are put in the same
request. The request goes out through the OTLP exporter's own HTTP client (its endpoint,
headers, TLS, compression, timeout and retries).

Used only when the provider's one processor is a ``BatchSpanProcessor`` around an
``OTLPSpanExporter`` whose client this knows (checked, so another SDK version falls back
to the batch processor). Parsed, a request holds the same spans as the SDK's encoding of
the same ``ReadableSpan`` s (tests/tracing/test_otlp_direct.py).
"""

from __future__ import annotations

import logging
import struct
from time import monotonic
from typing import Any

from opentelemetry.trace import SpanContext, SpanKind

from .._cache import BoundedCache
from . import _sdk
from ._traceparent import SPAN_ID, TRACE_ID

log = logging.getLogger(__name__)

_SIZE_KEY = _sdk.SIZE_KEY
_EXPORT_AT = 4096  # spans per request (about 0.2 kB each)
_EXPORT_EVERY_S = 1.0  # ... or sooner: a span waits at most about this long for a request
_WARN_EVERY_S = 30.0  # a failing collector is reported at most this often
_HEADS = 4096  # span heads kept (name, kind, attribute dict): a node has a few per input and output
_SIZES = 4096  # message size attributes kept (a stream's sizes repeat)

# The fixed-size fields of a span, packed at once: trace id (field 1, 16 bytes), span id (2)
# and parent span id (4, 8 bytes each, big-endian like the ids' bytes) ...
_IDS = struct.Struct(">H16sHQHQ")
_ROOT_IDS = struct.Struct(">H16sHQ")  # (no parent)
_TAG_TRACE_ID, _TAG_SPAN_ID, _TAG_PARENT_ID = 0x0A10, 0x1208, 0x2208  # tag and length, big-endian
# ... and status (field 15: empty, i.e. UNSET), flags (16, fixed32: what the SDK writes, "has
# is_remote" and "is remote" of the parent), start and end (7 and 8, fixed64), little-endian.
_TAIL = struct.Struct("<HHIBQBQ")
_TAIL_LEN = _TAIL.size
_HAS_IS_REMOTE = 0x100
_REMOTE = 0x300
_START_TAG, _END_TAG, _STATUS_UNSET, _FLAGS_TAG = 0x39, 0x41, 0x007A, 0x0185
# A link (Span field 13, 33 bytes): trace id (1), span id (2), flags (6, fixed32, as for a parent).
# The flags are little-endian, so the link is packed big-endian with them byte-swapped.
_LINK = struct.Struct(">HH16sHQBI")
_LINK_TAG = 0x6A21  # field 13, length 33
_LINK_FLAGS_TAG = 0x35
_LINK_LOCAL, _LINK_REMOTE = (int.from_bytes(flags.to_bytes(4, "little"), "big") for flags in (0x100, 0x300))
_KIND_CODES: dict[SpanKind, Any] = {  # (the protobuf enum's values)
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
_ONE_BYTE = 0x80  # a varint below this is one byte
_BYTE = [bytes((i,)) for i in range(_ONE_BYTE)]
_INT64 = (1 << 64) - 1


def _varint(n: int) -> bytes:
    """A protobuf varint (a negative ``n`` as an int64: two's complement, 10 bytes)."""
    if 0 <= n < _ONE_BYTE:
        return _BYTE[n]
    n &= _INT64
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_LEN_MAX = 16384  # spans shorter than this (all but odd ones) take their length prefix from _LEN
_LEN = [_varint(n) for n in range(_LEN_MAX)]


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field."""
    return tag + _varint(len(payload)) + payload


class OtlpDirect:
    """Spans of one tracer, written as OTLP bytes and sent in requests of up to ``_EXPORT_AT``.

    Not thread-safe: one thread (the feeding thread, or whoever holds its lock) calls
    :meth:`add` and :meth:`send`.
    """

    def __init__(self, exporter: Any, client: Any, resource: Any, scope: Any, span_type: type, readable: Any) -> None:
        from opentelemetry.context import attach, detach, set_value
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        self._exporter = exporter
        self._http = client  # the exporter's HTTP client (see _sdk.otlp_client)
        self._encode_spans = encode_spans
        self._otel_resource = resource
        self._scope = scope
        self._span_type: Any = span_type  # (its spans have dora_plain_ids: see _span)
        self._readable = readable  # _lean's maker of ReadableSpans (for the odd span)
        # (name, kind, id(attrs)) -> (attrs, bytes); and message size -> its attribute's bytes
        self._static: BoundedCache[tuple[str, Any, int], tuple[Any, bytes]] = BoundedCache(_HEADS)
        self._sizes: BoundedCache[int, bytes] = BoundedCache(_SIZES)
        self._chunks: list[bytes] = []  # encoded spans (each a ScopeSpans.spans field)
        self._first = 0.0  # when the oldest of them was added (monotonic)
        self._last_trace = ("", b"")  # the last trace id read from a metadata text: hex, bytes
        self._lost = 0  # spans not exported since the last warning
        self._warn_at = 0.0  # when a failed request may be reported again (monotonic)
        self._attach, self._detach, self._set_value = attach, detach, set_value
        self._suppress = _sdk.suppress_key()
        # The request around the spans: ResourceSpans{resource, ScopeSpans{scope, spans}}, made
        # by the SDK's encoder from a template span, with the spans left out.
        from opentelemetry.sdk.trace import ReadableSpan

        template = ReadableSpan(
            name="t", context=SpanContext(1, 1, False), resource=resource, instrumentation_scope=scope
        )
        request = encode_spans([template])
        resource_spans = request.resource_spans[0]
        scope_spans = resource_spans.scope_spans[0]
        del scope_spans.spans[:]
        self._scope_head = scope_spans.SerializeToString()
        del resource_spans.scope_spans[:]
        self._resource_head = resource_spans.SerializeToString()

    @classmethod
    def create(cls, tracer: Any, processors: Any, span_type: type, readable: Any) -> OtlpDirect | None:
        """One for ``tracer`` if its spans all go to one OTLP/HTTP exporter this knows, else None."""
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            if len(processors) != 1 or type(processors[0]) is not BatchSpanProcessor:
                return None
            exporter = processors[0].span_exporter
            client = _sdk.otlp_client(exporter) if type(exporter) is OTLPSpanExporter else None
            if client is None:
                return None
            return cls(exporter, client, tracer.resource, _sdk.instrumentation_scope(tracer), span_type, readable)
        except Exception:  # an SDK or exporter this does not know: the batch processor does it
            log.debug("direct OTLP encoding unavailable", exc_info=True)
            return None

    # -- encoding --------------------------------------------------------------------------

    def add(self, finished: Any) -> None:
        """Encode a finished span (a span of ``span_type`` or a producer span's fields)."""
        chunk: bytes | None
        if type(finished) is tuple:
            chunk = self._producer(*finished)
        else:
            chunk = self._span(finished)
        if chunk is not None:
            if not self._chunks:
                self._first = monotonic()
            self._chunks.append(chunk)

    def _trace_bytes(self, text: str) -> bytes:
        """The trace id in a plain metadata text (``traceparent:00-<trace id>-...``), as bytes."""
        last, value = self._last_trace
        if text[TRACE_ID] != last:
            last = text[TRACE_ID]
            value = bytes.fromhex(last)
            self._last_trace = (last, value)
        return value

    def due(self) -> bool:
        """A request should go now (enough spans, or the oldest has waited long enough)."""
        chunks = self._chunks
        return len(chunks) >= _EXPORT_AT or (bool(chunks) and monotonic() - self._first >= _EXPORT_EVERY_S)

    def _head(self, name: str, kind: SpanKind, attrs: dict[str, Any]) -> bytes:
        """The bytes of name, kind and ``attrs`` (made once per span name, kind and attribute dict)."""
        key = (name, kind, id(attrs))
        entry = self._static.get(key)
        if entry is None or entry[0] is not attrs:  # (an id may be reused once its dict is gone)
            from opentelemetry.proto.trace.v1.trace_pb2 import Span as PB2Span

            head = PB2Span(name=name, kind=_KIND_CODES[kind]).SerializeToString() + self._attribute_bytes(attrs)
            entry = self._static.put(key, (attrs, head))
        return entry[1]

    def _attribute_bytes(self, attrs: dict[str, Any]) -> bytes:
        """The bytes of the attributes ``attrs``, as the SDK's encoder writes them."""
        from opentelemetry.sdk.trace import ReadableSpan

        template = ReadableSpan(
            name="t",
            context=SpanContext(1, 1, False),
            attributes=attrs,
            resource=self._otel_resource,
            instrumentation_scope=self._scope,
        )
        span = self._encode_spans([template]).resource_spans[0].scope_spans[0].spans[0]
        return b"".join(_field(b"J", kv.SerializeToString()) for kv in span.attributes)

    def _size(self, size: Any) -> bytes:
        """The bytes of the message size attribute."""
        if type(size) is not int:
            return self._attribute_bytes({_SIZE_KEY: size})
        out = self._sizes.get(size)
        if out is None:
            value = b"\x18" + _varint(size)  # AnyValue.int_value (field 3)
            out = self._sizes.put(size, _field(b"J", _field(b"\n", _SIZE_KEY.encode()) + _field(b"\x12", value)))
        return out

    def _producer(
        self,
        name: str,
        attrs: dict[str, Any],
        size: Any,
        span_id: int,
        parent: Any,
        start: int,
        end: int,
        trace_id: Any,
        flags: Any,
    ) -> bytes | None:
        """A producer span from its fields (``_LeanSpans.produce``)."""
        if _SIZE_KEY in attrs:  # (not dora_zmq's attributes) the size replaces it: as the SDK would
            return self._generic((name, attrs, size, span_id, parent, start, end, trace_id, flags))
        if parent is None:  # a root: its trace id was made with it
            ids = _ROOT_IDS.pack(_TAG_TRACE_ID, trace_id.to_bytes(16, "big"), _TAG_SPAN_ID, span_id)
            remote = _HAS_IS_REMOTE
        else:
            plain = parent.dora_plain_ids() if type(parent) is self._span_type else None
            if plain is not None:  # a consumer span of this node, its context not worked out
                trace_bytes = self._trace_bytes(plain[0])
                ids = _IDS.pack(_TAG_TRACE_ID, trace_bytes, _TAG_SPAN_ID, span_id, _TAG_PARENT_ID, plain[1])
                remote = _HAS_IS_REMOTE
            else:
                if not isinstance(parent, SpanContext):
                    parent = parent.get_span_context()
                trace_id = parent.trace_id.to_bytes(16, "big")
                ids = _IDS.pack(_TAG_TRACE_ID, trace_id, _TAG_SPAN_ID, span_id, _TAG_PARENT_ID, parent.span_id)
                state = parent.trace_state
                if state:
                    ids += _field(b"\x1a", ",".join(f"{k}={v}" for k, v in state.items()).encode())
                remote = _REMOTE if parent.is_remote else _HAS_IS_REMOTE
        head = self._head(name, SpanKind.PRODUCER, attrs)
        size_bytes = self._size(size)
        n = len(ids) + len(head) + len(size_bytes) + _TAIL_LEN
        tail = _TAIL.pack(_STATUS_UNSET, _FLAGS_TAG, remote, _START_TAG, start, _END_TAG, end)
        return b"".join((b"\x12", _LEN[n] if n < _LEN_MAX else _varint(n), ids, head, size_bytes, tail))

    def _span(self, span: Any) -> bytes | None:
        """A span of ``span_type`` (None: not sampled, nothing to export)."""
        fields = span.export_fields()
        if fields is None:
            return self._generic(span)  # (a user's attribute, event or status; or a size attribute in attrs)
        name, kind, attrs, size, links, start, end = fields
        if links is not None:  # (an output of a node with several inputs)
            link_bytes = self._link_bytes(links)
            if link_bytes is None:
                return self._generic(span)
        else:
            link_bytes = b""
        plain = span.dora_plain_ids()
        if plain is not None:  # its parent's ids are in the metadata text (the plain form)
            text, span_id, sampled = plain
            if not sampled:
                return None
            parent_id = int(text[SPAN_ID], 16)
            ids = _IDS.pack(_TAG_TRACE_ID, self._trace_bytes(text), _TAG_SPAN_ID, span_id, _TAG_PARENT_ID, parent_id)
            remote = _REMOTE
        else:
            context = span.get_span_context()
            if not context.trace_flags.sampled:
                return None
            parent = span.parent_context()
            if parent is None:
                ids = _ROOT_IDS.pack(_TAG_TRACE_ID, context.trace_id.to_bytes(16, "big"), _TAG_SPAN_ID, context.span_id)
                remote = _HAS_IS_REMOTE
            else:
                trace_id = context.trace_id.to_bytes(16, "big")
                ids = _IDS.pack(_TAG_TRACE_ID, trace_id, _TAG_SPAN_ID, context.span_id, _TAG_PARENT_ID, parent.span_id)
                remote = _REMOTE if parent.is_remote else _HAS_IS_REMOTE
            state = context.trace_state
            if state:
                ids += _field(b"\x1a", ",".join(f"{k}={v}" for k, v in state.items()).encode())
        head = self._head(name, kind, attrs)
        size_bytes = b"" if size is None else self._size(size)
        n = len(ids) + len(head) + len(size_bytes) + len(link_bytes) + _TAIL_LEN
        tail = _TAIL.pack(_STATUS_UNSET, _FLAGS_TAG, remote, _START_TAG, start, _END_TAG, end)
        return b"".join((b"\x12", _LEN[n] if n < _LEN_MAX else _varint(n), ids, head, size_bytes, link_bytes, tail))

    @staticmethod
    def _link_bytes(links: Any) -> bytes | None:
        """The bytes of a span's links (None: one has attributes, or some were dropped)."""
        if getattr(links, "dropped", 0):
            return None
        out = []
        for link in links:
            if link.attributes:
                return None
            context = link.context
            remote = _LINK_REMOTE if context.is_remote else _LINK_LOCAL
            trace_id = context.trace_id.to_bytes(16, "big")
            span_id = context.span_id
            out.append(_LINK.pack(_LINK_TAG, _TAG_TRACE_ID, trace_id, _TAG_SPAN_ID, span_id, _LINK_FLAGS_TAG, remote))
        return b"".join(out)

    def _generic(self, finished: Any) -> bytes | None:
        """A span the SDK's encoder writes (made a ``ReadableSpan`` first)."""
        readable = self._readable(finished)
        if readable is None:
            return None
        body: bytes = self._encode_spans([readable]).resource_spans[0].scope_spans[0].spans[0].SerializeToString()
        return b"\x12" + _varint(len(body)) + body

    # -- sending ---------------------------------------------------------------------------

    def pending(self) -> int:
        return len(self._chunks)

    def forget(self) -> None:
        """Drop the spans encoded so far (in a forked child: the parent sends them)."""
        self._chunks = []

    def send(self) -> None:
        """One request with every span encoded so far (dropped if it fails, as the SDK does)."""
        chunks = self._chunks
        if not chunks:
            return
        self._chunks = []
        if _sdk.exporter_shut_down(self._exporter):
            log.info("tracing: the exporter was shut down; %d spans dropped", len(chunks))
            return
        # ExportTraceServiceRequest{resource_spans: ResourceSpans{..., scope_spans: ScopeSpans{..., spans}}},
        # joined once (a request is about 1 MB: every copy counts)
        scope_len = len(self._scope_head) + sum(map(len, chunks))
        head = _varint(scope_len)
        resource_len = len(self._resource_head) + 1 + len(head) + scope_len
        data = b"".join((b"\n", _varint(resource_len), self._resource_head, b"\x12", head, self._scope_head, *chunks))
        token = self._attach(self._set_value(self._suppress, True)) if self._suppress is not None else None
        try:
            result = self._http.export(data)
            if not getattr(result, "success", False):
                self._failed(len(chunks), getattr(result, "reason", None) or getattr(result, "error", None))
        except Exception as exc:  # noqa: BLE001 - a failing collector must not stop the feeding thread
            self._failed(len(chunks), exc)
        finally:
            if token is not None:
                self._detach(token)

    def _failed(self, count: int, why: Any) -> None:
        """Report lost spans: at once, then at most every 30 s (a collector may be down for long)."""
        self._lost += count
        now = monotonic()
        if now >= self._warn_at:
            log.warning("tracing: could not export %d spans (%s)", self._lost, why)
            self._lost = 0
            self._warn_at = now + _WARN_EVERY_S
