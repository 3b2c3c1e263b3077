"""The fence: every access to a private name of OpenTelemetry's API, SDK or exporter is here.

The fast path (:mod:`._lean`, :mod:`._span`, :mod:`._otlp`, :mod:`._node`) builds the SDK's
spans without ``tracer.start_span`` and sends OTLP bytes without the batch processor, so it
needs what the SDK keeps to itself: a tracer's limits, scope and processors, the field layout
of its ``Span``, the ``Context`` key of the current span, the context variable behind the
runtime context, and the OTLP/HTTP exporter's client. Those names are read here only, each
checked where a release could differ (:func:`plain_tracer`, :func:`layout_fits`,
:func:`otlp_client`), so that an SDK this does not know makes the callers fall back to the
public API instead of breaking. The range of releases this is tested with is pinned in
``pyproject.toml`` (``make otel-range`` runs the differential tests at both ends).

Threading: nothing here owns state but :class:`SdkSpan`'s fields, which belong to the span
(its lazy fields are made once under a lock; see ``__getattr__``).
"""

from __future__ import annotations

import abc
import functools
import threading
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from time import time_ns
from typing import Any, ClassVar

from opentelemetry import context as otel_context
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, Tracer
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, SpanContext, SpanKind
from opentelemetry.trace.propagation import _SPAN_KEY
from opentelemetry.trace.status import Status, StatusCode

SPAN_KEY: str = _SPAN_KEY  # the Context key of the current span
SIZE_KEY = "messaging.message.body.size"  # the message size attribute of dora's spans
_MIN_ATTRIBUTES = 8  # dora's spans have up to 5 attributes; a lower limit would drop some
UNSET = Status(StatusCode.UNSET)  # a span's status until someone sets one


# -- the tracer, its processors, the runtime context -------------------------------------


def plain_tracer(tracer: Any) -> bool:
    """True if ``tracer`` makes spans as :class:`._lean._LeanSpans` does.

    An SDK tracer, enabled, with the default sampler, no span metrics of its own, and
    attribute limits that keep dora's attributes whole.
    """
    from opentelemetry.sdk.trace import sampling

    if not isinstance(tracer, Tracer) or tracer.sampler is not sampling.DEFAULT_ON or not tracer._is_enabled():
        return False
    metrics = getattr(tracer, "_tracer_metrics", None)  # (none before SDK 1.40)
    if metrics is not None and type(metrics).__name__ != "NoOpTracerMetrics":
        return False
    limits = tracer._span_limits
    return limits.max_span_attribute_length is None and (
        limits.max_span_attributes is None or limits.max_span_attributes >= _MIN_ATTRIBUTES
    )


def instrumentation_scope(tracer: Tracer) -> Any:
    """The tracer's ``InstrumentationScope``."""
    return tracer._instrumentation_scope


def processors(multi: Any) -> Sequence[SpanProcessor]:
    """The span processors behind a provider's multi-processor (a new tuple when one is added)."""
    procs: Sequence[SpanProcessor] = multi._span_processors
    return procs


def processors_getter(multi: Any) -> Callable[[], Sequence[SpanProcessor]]:
    """:func:`processors` of ``multi`` as a call without Python frames (the message path asks)."""
    return functools.partial(getattr, multi, "_span_processors")


def context_var() -> ContextVar[Context] | None:
    """The ``ContextVar`` behind OpenTelemetry's runtime context (None: another runtime context)."""
    runtime = otel_context._RUNTIME_CONTEXT
    if type(runtime) is ContextVarsRuntimeContext:
        var = getattr(runtime, "_current_context", None)
        if isinstance(var, ContextVar):
            return var
    return None


def suppress_key() -> str | None:
    """The context key that turns instrumentation (of the exporter's HTTP requests) off, if any."""
    key: str | None = getattr(otel_context, "_SUPPRESS_INSTRUMENTATION_KEY", None)
    return key


# -- the OTLP/HTTP exporter --------------------------------------------------------------


def otlp_client(exporter: Any) -> Any | None:
    """The HTTP client of an ``OTLPSpanExporter`` this knows, with its own metrics off; else None.

    Its ``export(bytes)`` sends one request (endpoint, headers, TLS, compression, timeout and
    retries as configured) and returns a result with ``success``.
    """
    client = getattr(exporter, "_client", None)
    if not callable(getattr(client, "export", None)):
        return None
    if type(getattr(exporter, "_metrics", None)).__name__ != "NoOpExporterMetrics":
        return None  # the exporter's own metrics are on: let it count its requests
    return client


def exporter_shut_down(exporter: Any) -> bool:
    """True once the exporter was shut down (it sends nothing more)."""
    return bool(getattr(exporter, "_shutdown", False))


# -- the SDK span's layout ---------------------------------------------------------------


class SdkSpan(Span):
    """An SDK ``Span`` whose fields are set directly, the expensive ones made on first use.

    The per-tracer fields are class attributes (:func:`span_base`); a span sets only its own.
    The attribute, event and link containers and the lock are made when first asked for (a
    user touching the current input span): until then the attributes are the shared dict
    ``_dora_attributes`` plus the message size. The span's context and parent are made by
    :meth:`dora_resolve` (the subclass's) when first asked for.
    """

    _trace_config = None
    _record_exception = True
    _set_status_on_exception = True
    _status = UNSET
    _end_time: int | None = None
    _context: SpanContext  # (declared SpanContext | None by the SDK: always set here, see __getattr__)
    _start_time: int
    _record_end_metrics = None
    _kind = SpanKind.CONSUMER  # what the message path makes; started() sets its own
    _dora_attributes: dict[str, Any]
    _dora_size: int | None = None  # the message size attribute, when not in _dora_attributes yet
    _dora_touched = False  # True once a lock or attribute/event/link list was made for it
    _dora_text: Any = None  # the metadata text of its parent (a consumer span's)
    _dora_parts: Any = None  # its children's text parts, when made ahead (see parent_parts)
    _dora_resolving: ClassVar[threading.Lock]  # makes a span's context once (per tracer)
    _dora_fields: ClassVar[frozenset[str]]  # every field a span of this class may have

    def __init__(self, name: str, attributes: dict[str, Any], size: int | None, text: Any) -> None:
        # A consumer span: as little as possible while the message waits (the parent is read
        # from the metadata text, and the attributes dict made, when needed).
        self._name = name
        self._dora_attributes = attributes
        self._dora_size = size
        self._dora_text = text
        self._start_time = time_ns()

    @classmethod
    def blank(cls) -> Any:
        """A consumer span to fill in later (:meth:`fill`)."""
        span = object.__new__(cls)
        span.fill(None, None, None, None, 0)
        return span

    def fill(self, name: Any, attributes: Any, size: int | None, text: Any, start: int) -> None:
        """Make a blank span the consumer span ``__init__`` makes (field by field, in its order)."""
        self._name = name
        self._dora_attributes = attributes
        self._dora_size = size
        self._dora_text = text
        self._start_time = start

    def set_root(self, context: SpanContext, parts: Any) -> None:
        """Give a blank span a root context made ahead (a timer tick's) and its children's parts."""
        self._context = context
        self._dora_parts = parts
        self._parent = None

    @classmethod
    def started(
        cls,
        name: str,
        kind: SpanKind,
        attributes: dict[str, Any],
        context: SpanContext,
        parent: SpanContext | None,
        links: Sequence[Link],
    ) -> Any:
        """A span whose context is known already (``_LeanSpans.start``)."""
        span = object.__new__(cls)
        span._name = name
        span._kind = kind
        span._dora_attributes = attributes
        span._context = context
        span._parent = parent
        if links:
            span._links = span._new_links(links)
        span._start_time = time_ns()
        return span

    @abc.abstractmethod  # Span is an ABC: a class without it cannot be instantiated
    def dora_resolve(self) -> tuple[SpanContext, SpanContext | None]:
        """The span's context and parent, made when first asked for (the subclass knows how)."""

    def full_attributes(self) -> dict[str, Any]:
        """The span's attributes as made at the start (without the user's later ones)."""
        size = self._dora_size
        if size is None:
            return self._dora_attributes
        attributes = self._dora_attributes.copy()
        attributes[SIZE_KEY] = size
        return attributes

    def __getattr__(self, name: str) -> Any:  # only for the fields not made yet
        fields = self.__dict__
        if name == "_context" or name == "_parent":
            with self._dora_resolving:  # once: the feeding thread may ask at the same time
                if "_context" not in fields:
                    context, parent = self.dora_resolve()
                    fields["_parent"] = parent
                    fields["_context"] = context
            return fields[name]
        limits = self._limits
        value: Any
        if name == "_attributes":
            value = BoundedAttributes(
                limits.max_span_attributes,
                self.full_attributes(),
                immutable=False,
                max_value_len=limits.max_span_attribute_length,
            )
        elif name == "_events":
            value = BoundedList(limits.max_events)
        elif name == "_links":
            value = BoundedList(limits.max_links)
        elif name == "_lock":
            value = threading.Lock()
        else:
            raise AttributeError(name)
        fields[name] = value
        fields["_dora_touched"] = True  # its end must go the SDK's way (see end_now)
        return value

    def context_known(self) -> bool:
        """True once the span's context was made (asked for, or given)."""
        return "_context" in self.__dict__

    def get_span_context(self) -> SpanContext:
        context: SpanContext = self._context
        return context

    def is_recording(self) -> bool:
        return self._end_time is None and self._context.trace_flags.sampled

    def end_now(self, end_time: int) -> bool:
        """End the span the cheap way if nobody touched it (False: use :meth:`end_locked`)."""
        if self._end_time is not None or self._dora_touched:
            return False
        self._end_time = end_time
        return True

    def end_locked(self, end_time: int | None) -> bool:
        """End the span as ``Span.end`` does before the processors (False: it had ended)."""
        with self._lock:
            if self._end_time is not None:
                return False
            self._end_time = end_time if end_time is not None else time_ns()
            attributes = self.__dict__.get("_attributes")
            if attributes is not None:
                attributes._immutable = True  # as Span.end does
        return True

    def to_processor(self, readable: ReadableSpan) -> None:
        """Hand the ended span to the tracer's processors, as ``Span.end`` does."""
        processor = self._span_processor
        processor._on_ending(self)
        processor.on_end(readable)

    def readable(self) -> ReadableSpan | None:
        """What ``Span.end`` hands the processors (None if not sampled)."""
        context = self._context
        if not context.trace_flags.sampled:
            return None
        fields = self.__dict__
        attributes = fields.get("_attributes")
        return ReadableSpan(
            name=self._name,
            context=context,
            parent=self._parent,
            resource=self._resource,
            attributes=self.full_attributes() if attributes is None else attributes,
            events=fields.get("_events", ()),
            links=fields.get("_links", ()),
            kind=self._kind,
            instrumentation_info=self._instrumentation_info,
            status=self._status,
            start_time=self._start_time,
            end_time=self._end_time,
            instrumentation_scope=self._instrumentation_scope,
        )

    def export_fields(self) -> tuple[str, SpanKind, dict[str, Any], int | None, Any, int, int] | None:
        """``(name, kind, attributes, size, links or None, start, end)`` for the OTLP encoder.

        None when the encoder must take the general way: the user touched the span (an
        attribute, event or status) or its attributes already hold a size.
        """
        size = self._dora_size
        attrs = self._dora_attributes
        if self._dora_touched or self._status is not UNSET or (size is not None and SIZE_KEY in attrs):
            return None
        end = self._end_time
        assert end is not None  # (only ended spans are exported)
        return self._name, self._kind, attrs, size, self.__dict__.get("_links"), self._start_time, end

    def parent_context(self) -> SpanContext | None:
        """The parent's span context (None for a root)."""
        parent: SpanContext | None = self._parent
        return parent


def span_base(tracer: Tracer) -> type[SdkSpan]:
    """A subclass of :class:`SdkSpan` with ``tracer``'s fields (resource, scope, limits, ...)."""
    fields: dict[str, Any] = {
        "_resource": tracer.resource,
        "_instrumentation_info": tracer.instrumentation_info,
        "_instrumentation_scope": tracer._instrumentation_scope,
        "_span_processor": tracer.span_processor,
        "_limits": tracer._span_limits,
        "_sampler": tracer.sampler,
        "_dora_resolving": threading.Lock(),
    }
    return type("SdkSpanOfTracer", (SdkSpan,), fields)


def layout_fits(span_type: type[SdkSpan]) -> bool:
    """True if a real SDK span has no field that ``span_type`` does not provide.

    Checked against a span the SDK makes itself, so an SDK release with a new field makes the
    caller fall back to ``tracer.start_span`` instead of exporting spans without it.
    """
    from opentelemetry.sdk.trace import _Span

    return set(vars(_Span("layout", SpanContext(1, 1, False)))) <= span_type._dora_fields


def declare_fields(span_type: type[SdkSpan]) -> None:
    """Record the fields a span of ``span_type`` (a final subclass) may have, for :func:`layout_fits`."""
    names = {"_name", "_kind", "_context", "_parent", "_start_time", "_attributes", "_events", "_links", "_lock"}
    for cls in span_type.__mro__:
        if cls is Span:
            break
        names.update(k for k in vars(cls) if k.startswith("_") and not k.startswith("__"))
    span_type._dora_fields = frozenset(names)
