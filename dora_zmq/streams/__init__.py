"""Streaming pipelines on threads: DeGirum-style gizmos connected by queues.

A drop-in for ``degirum_tools.streams``' core (``StreamMeta``, ``StreamData``, ``Stream``,
``Gizmo``, ``Composition``): code written for it runs unchanged but for the import; the
deliberate differences are listed in the README (tests/compat checks both against each other).

General layout (imports point downward only)::

    _errors        StreamsError tree (CompositionError, ...) under dora_zmq.DoraZmqError
    _meta          StreamMeta (tagged metainfo) and StreamData (payload + meta)
    _stream        Stream: a queue with drop-oldest and an end-of-stream poison pill
    _timing        the timing stamps send_result() appends (tag_timing, get_timing_info)
    _gizmo         Gizmo: the block base class, connections (>>, [i]) and send_result
    _composition   Composition: one thread per gizmo, stop/wait/errors, bottleneck reports
    gizmos         generic gizmos: iterator source, sink, function map, fan-in

This package uses only the standard library; it knows nothing of nodes or ZeroMQ.
"""

from __future__ import annotations

from ._composition import Composition
from ._errors import CompositionError, GizmoFailure, GizmoInputError, StreamConfigError, StreamsError
from ._gizmo import PUT_POLL_INTERVAL_S, Gizmo, empty_run
from ._meta import StreamData, StreamMeta, Tags
from ._stream import Stream
from ._timing import get_timing_info, tag_timing
from .gizmos import (
    FanInGizmo,
    FunctionGizmo,
    IteratorSourceGizmo,
    SinkGizmo,
    tag_analyzer,
    tag_crop,
    tag_inference,
    tag_preprocess,
    tag_resize,
    tag_video,
)

__all__ = [
    "PUT_POLL_INTERVAL_S",
    "Composition",
    "CompositionError",
    "FanInGizmo",
    "FunctionGizmo",
    "Gizmo",
    "GizmoFailure",
    "GizmoInputError",
    "IteratorSourceGizmo",
    "SinkGizmo",
    "Stream",
    "StreamConfigError",
    "StreamData",
    "StreamMeta",
    "StreamsError",
    "Tags",
    "empty_run",
    "get_timing_info",
    "tag_analyzer",
    "tag_crop",
    "tag_inference",
    "tag_preprocess",
    "tag_resize",
    "tag_timing",
    "tag_video",
]
