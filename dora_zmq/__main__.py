"""``python -m dora_zmq`` == ``dora-zmq``."""

from .cli import main

main()
