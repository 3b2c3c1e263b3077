"""A minimal OTLP/HTTP trace receiver: for tests, benchmarks and a quick look without Jaeger.

``OtlpReceiver`` runs in a thread and keeps every span it is sent (decoded with the
``opentelemetry-proto`` package, installed with the ``dev`` extra); ``python -m
dora_zmq.otlp_receiver PORT`` runs one in the foreground and prints a line per span::

    span <service.name> <trace id> <span name>

Point ``OTEL_EXPORTER_OTLP_ENDPOINT`` at it. It is not a trace store: use Jaeger for that.

It listens on loopback unless told otherwise (``HOST`` argument, e.g. ``0.0.0.0`` in a
container), reads at most ``MAX_BODY_BYTES`` per request, after gzip too (a few-KiB gzip
body can expand to gigabytes), and gives a client ``REQUEST_TIMEOUT_S`` to send it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

__all__ = ["MAX_BODY_BYTES", "BodyTooLarge", "OtlpReceiver", "ReceivedSpan", "decode_export", "main"]

#: The largest request body accepted, compressed or not (an SDK batch of 512 spans is well
#: under 1 MiB).
MAX_BODY_BYTES = 16 * 1024 * 1024
#: How long a client may take to send its request (a stalled one holds a thread).
REQUEST_TIMEOUT_S = 10.0


class BodyTooLarge(ValueError):
    """A request body, or what it decompresses to, exceeds ``MAX_BODY_BYTES``."""


@dataclass
class ReceivedSpan:
    """One span as exported."""

    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    attributes: dict[str, Any]
    links: list[tuple[str, str]] = field(default_factory=list)


def _gunzip(body: bytes, limit: int) -> bytes:
    """``body`` decompressed, refusing to produce more than ``limit`` bytes."""
    inflater = zlib.decompressobj(wbits=31)  # gzip framing
    out = inflater.decompress(body, limit)
    if inflater.unconsumed_tail or len(out) > limit:
        raise BodyTooLarge(f"gzip body expands beyond {limit} bytes")
    return out


def decode_export(body: bytes, gzipped: bool = False, limit: int = MAX_BODY_BYTES) -> list[ReceivedSpan]:
    """The spans of one ``ExportTraceServiceRequest`` body.

    Raises:
        BodyTooLarge: the gzip body expands beyond ``limit`` bytes.
        zlib.error, google.protobuf.message.DecodeError: the body is not a valid export.
    """
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    request.ParseFromString(_gunzip(body, limit) if gzipped else body)
    spans = []
    for rs in request.resource_spans:
        service = next((a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), "")
        for ss in rs.scope_spans:
            for s in ss.spans:
                attrs = {a.key: _value(a.value) for a in s.attributes}
                links = [(link.trace_id.hex(), link.span_id.hex()) for link in s.links]
                spans.append(
                    ReceivedSpan(
                        service, s.name, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(), s.kind, attrs, links
                    )
                )
    return spans


class OtlpReceiver:
    """Listens on ``host:port`` (a free loopback port by default); keeps what it receives.

    Args:
        on_spans: called (in a server thread) with each request's spans before the reply.
        decode: False to only count requests and bytes (no ``opentelemetry-proto`` needed).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        on_spans: Callable[[list[ReceivedSpan]], None] | None = None,
        decode: bool = True,
    ) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self.bytes = 0
        self._cv = threading.Condition()
        self._on_spans = on_spans
        self._decode = decode
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            timeout = REQUEST_TIMEOUT_S  # on the connection's socket: a stalled client is dropped

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if not 0 <= length <= MAX_BODY_BYTES:
                    self._reply(413 if length > 0 else 400)
                    return
                body = self.rfile.read(length)
                try:
                    gzipped = self.headers.get("Content-Encoding") == "gzip"
                    spans = decode_export(body, gzipped) if receiver._decode else []
                except BodyTooLarge:
                    self._reply(413)
                    return
                except Exception:  # noqa: BLE001 - protobuf's and zlib's errors: a bad request, not a crash
                    self._reply(400)
                    return
                receiver._add(spans, len(body))
                self._reply(200)  # an empty body is a valid, empty ExportTraceServiceResponse

            def _reply(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                if status != 200:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    @property
    def endpoint(self) -> str:
        """What ``OTEL_EXPORTER_OTLP_ENDPOINT`` takes."""
        host, port = self._server.server_address[:2]
        if isinstance(host, bytes):  # typeshed allows bytes (AF_UNIX); an HTTPServer's host is a str
            host = host.decode()
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """Environment that turns OTLP export on, towards this receiver."""
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint, "OTEL_TRACES_EXPORTER": "otlp"}

    def __enter__(self) -> "OtlpReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def _add(self, spans: list[ReceivedSpan], size: int) -> None:
        if self._on_spans is not None and spans:
            self._on_spans(spans)
        with self._cv:
            self.requests += 1
            self.bytes += size
            self.spans.extend(spans)
            self._cv.notify_all()

    def wait_for(self, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 15.0) -> bool:
        """Wait until ``predicate(spans)`` is true."""
        with self._cv:
            return self._cv.wait_for(lambda: predicate(self.spans), timeout)


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def main(argv: list[str] | None = None) -> None:
    """``python -m dora_zmq.otlp_receiver PORT [HOST]``: print ``span <service> <trace> <name>``."""
    parser = argparse.ArgumentParser(
        prog="python -m dora_zmq.otlp_receiver",
        description="A minimal OTLP/HTTP trace receiver: prints `span <service> <trace id> <name>` per span received "
        "(point OTEL_EXPORTER_OTLP_ENDPOINT at http://HOST:PORT). Not a trace store: use Jaeger for that.",
    )
    parser.add_argument("port", type=int, help="TCP port to listen on (OTLP/HTTP is 4318 by convention)")
    parser.add_argument(
        "host",
        nargs="?",
        default="127.0.0.1",
        help=(
            "interface to listen on (default 127.0.0.1; 0.0.0.0 accepts exports from other machines,"
            " and anyone who reaches the port can then send spans)"
        ),
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    port, host = args.port, args.host

    printing = threading.Lock()

    def show(spans: list[ReceivedSpan]) -> None:
        # Printed before the reply: once an exporter's flush returns, its spans are on stdout.
        # Exports are handled on concurrent threads, and print() writes the text and its end
        # separately: without the lock two exports' lines could merge into one.
        text = "".join(f"span {s.service} {s.trace_id} {s.name}\n" for s in spans)
        with printing:
            sys.stdout.write(text)
            sys.stdout.flush()

    receiver = OtlpReceiver(host, port, on_spans=show)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `docker compose down` sends SIGTERM
    print("listening", flush=True)
    receiver.serve_forever()


if __name__ == "__main__":
    main()
