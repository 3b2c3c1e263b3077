"""A throw-away OTLP/HTTP collector for the tracing variant: accepts and counts exports.

One implementation lives in the package (dora_zmq.otlp_receiver); here it only counts, so
decoding does not load the machine during the measurement.
"""

from __future__ import annotations

from dora_zmq.otlp_receiver import OtlpReceiver

__all__ = ["OtlpSink"]


class OtlpSink(OtlpReceiver):
    """Context manager: a counting collector on ``127.0.0.1:<free port>``."""

    def __init__(self) -> None:
        super().__init__(decode=False)
