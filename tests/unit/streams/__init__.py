"""Unit tests of dora_zmq.streams."""
