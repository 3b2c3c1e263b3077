"""Stand-in for the compose file's Jaeger: an OTLP/HTTP receiver that prints every span.

Run by test_compose_netns.py inside the `jaeger` namespace host, so the services reach it
exactly as configured (OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318). The receiver in
tests/tracing/ listens on the test process's own loopback, which other namespaces cannot
reach. Prints ``listening`` once bound, then one line per span:

    span <service.name> <trace id> <span name>

Usage: python otlp_sink.py PORT
"""

from __future__ import annotations

import gzip
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        lines = []
        for rs in request.resource_spans:
            service = next((a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), "?")
            for ss in rs.scope_spans:
                lines += [f"span {service} {s.trace_id.hex()} {s.name}" for s in ss.spans]
        # Printed before the reply: once an exporter's flush returns, its spans are on stdout.
        if lines:
            print("\n".join(lines), flush=True)
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `docker compose down` sends SIGTERM
    print("listening", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
