"""Stand-in for the compose file's Jaeger, run inside the `jaeger` namespace host.

The services reach it exactly as configured (OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318).
It prints ``listening`` once bound, then ``span <service.name> <trace id> <span name>`` lines.

Usage: python otlp_sink.py PORT  (listens on every interface of its namespace host)
"""

import sys

from dora_zmq.otlp_receiver import main

if __name__ == "__main__":
    main([sys.argv[1], "0.0.0.0"])
