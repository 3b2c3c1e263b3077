"""The OTLP receiver the tracing tests use (one implementation: dora_zmq.otlp_receiver)."""

from dora_zmq.otlp_receiver import OtlpReceiver, ReceivedSpan

__all__ = ["OtlpReceiver", "ReceivedSpan"]
