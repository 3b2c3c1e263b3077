"""The floor: raw pyzmq + pyarrow with the same payloads and method, no framework.

Processes: a sender (PUB bound on ``ipc://``, or ``tcp://`` across hosts), optional relays (SUB -> deserialise ->
re-serialise -> PUB, what a forwarding node does), a receiver (SUB). Each message is the
multipart ``[topic, header, Arrow IPC stream]`` sent with ``copy=False``; the header is a fixed
struct (no JSON). The receiver acknowledges brackets over a PUSH -> PULL control socket.
High-water marks are 0 (unlimited) so PUB never drops.

Run by ``run.py`` (``--role sender|relay|receiver``); :func:`commands` builds the command lines.
"""

from __future__ import annotations

import argparse
import logging
import struct
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Job, Kind, LinkClosed, Msg, run_receiver, run_sender

log = logging.getLogger(__name__)

TOPIC = b"bench\0"
HEADER = struct.Struct("<qqqqq")  # kind, size, seq, t, n
ACK = struct.Struct("<q")
_SCHEMA = pa.schema([("value", pa.uint8())])
_HELLO_EVERY_MS = 10
TCP_PORT = 47310  # data; +1 control (namespace hosts have port spaces of their own)


def serialize(value: pa.Array) -> pa.Buffer:
    """One array as an Arrow IPC stream (schema + one batch + EOS), as dora_zmq's wire body."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, _SCHEMA) as writer:
        writer.write_batch(pa.RecordBatch.from_arrays([value], schema=_SCHEMA))
    return sink.getvalue()


def deserialize(frame: Any) -> pa.Array:
    """The array of an IPC stream frame, zero-copy over the frame's memory."""
    return pa.ipc.open_stream(pa.py_buffer(frame)).read_next_batch().column(0)


def _socket(ctx: zmq.Context[Any], kind: int) -> zmq.Socket[Any]:
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.LINGER, 1000)
    return sock


class ZmqSender:
    """PUB + PULL; the constructor returns once the receiver end of the chain is attached."""

    def __init__(self, ctx: zmq.Context[Any], data: str, ctrl: str, hello_timeout_s: float = 60.0) -> None:
        self.pub = _socket(ctx, zmq.PUB)
        self.pub.bind(data)
        self.pull = _socket(ctx, zmq.PULL)
        self.pull.bind(ctrl)
        hello = serialize(pa.array([1], type=pa.uint8()))
        deadline = time.monotonic() + hello_timeout_s
        while not self.pull.poll(_HELLO_EVERY_MS):  # slow-joiner handshake
            if time.monotonic() > deadline:
                raise TimeoutError("the receiver never attached")
            self.pub.send_multipart([TOPIC, HEADER.pack(Kind.HELLO, 0, 0, 0, 0), hello], copy=False)
        self.pull.recv()

    def produce(self, kind: int, value: pa.Array) -> pa.Array:
        return value

    def send(self, kind: int, size: int, seq: int, t: int, n: int, value: pa.Array) -> None:
        self.pub.send_multipart([TOPIC, HEADER.pack(kind, size, seq, t, n), serialize(value)], copy=False)

    def poll_ack(self, timeout_s: float) -> int | None:
        if not self.pull.poll(max(1, int(timeout_s * 1000))):
            return None
        return ACK.unpack(self.pull.recv())[0]

    def trace(self, on: bool) -> None:
        """No tracing here."""


class ZmqReceiver:
    """SUB + PUSH; answers the sender's HELLO once, then yields protocol messages."""

    def __init__(self, ctx: zmq.Context[Any], data: str, ctrl: str) -> None:
        self.sub = _socket(ctx, zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, TOPIC)
        self.sub.connect(data)
        self.push = _socket(ctx, zmq.PUSH)
        self.push.connect(ctrl)
        self.ready = False

    def recv(self) -> Msg | None:
        while True:
            frames = self.sub.recv_multipart(copy=False)
            kind, size, seq, t, n = HEADER.unpack(frames[1].buffer)
            rows = len(deserialize(frames[2].buffer))
            now = time.perf_counter_ns()
            if kind != Kind.HELLO:
                return Msg(kind, size, seq, t, n, rows, now)
            if not self.ready:
                self.ready = True
                self.push.send(b"ready")

    def ack(self, size: int) -> None:
        self.push.send(ACK.pack(size))


def relay(ctx: zmq.Context[Any], upstream: str, downstream: str) -> None:
    """Forward every message (decoding and re-encoding the Arrow body) until DONE."""
    sub = _socket(ctx, zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, TOPIC)
    sub.connect(upstream)
    pub = _socket(ctx, zmq.PUB)
    pub.bind(downstream)
    try:
        while True:
            topic, head, body = sub.recv_multipart(copy=False)
            pub.send_multipart([topic, head, serialize(deserialize(body.buffer))], copy=False)
            if HEADER.unpack(head.buffer)[0] == Kind.DONE:
                return
    finally:
        sub.close()
        pub.close()


def endpoints(workdir: Path, hops: int) -> list[str]:
    """Data endpoints of a chain of ``hops`` links, then the control endpoint."""
    return [f"ipc://{workdir}/zmq-data{i}.sock" for i in range(hops)] + [f"ipc://{workdir}/zmq-ctrl.sock"]


def tcp_endpoints(sender_ip: str) -> list[str]:
    """Data and control endpoints of one tcp link, both bound by the sender on its host."""
    return [f"tcp://{sender_ip}:{TCP_PORT}", f"tcp://{sender_ip}:{TCP_PORT + 1}"]


def commands(
    python: str,
    workdir: Path,
    hops: int,
    sender_host: tuple[str, Sequence[str]] | None = None,
    receiver_prefix: Sequence[str] = (),
) -> list[list[str]]:
    """Command lines of the receiver, the relays and the sender of a ``hops``-link chain.

    ``sender_host`` = ``(ip, command prefix)`` puts the sender on another host (one link
    over tcp to ``ip``); ``receiver_prefix`` runs the receiver on its own host.
    """
    me = str(Path(__file__).resolve())
    if sender_host is not None:
        if hops != 1:
            raise ValueError("across hosts the baseline is one link (sender -> receiver)")
        ip, sender_prefix = sender_host
        data, ctrl = tcp_endpoints(ip)
        return [
            [*receiver_prefix, python, me, "--role", "receiver", "--data", data, "--ctrl", ctrl],
            [*sender_prefix, python, me, "--role", "sender", "--data", data, "--ctrl", ctrl],
        ]
    eps = endpoints(workdir, hops)
    cmds = [[python, me, "--role", "receiver", "--data", eps[hops - 1], "--ctrl", eps[-1]]]
    cmds += [[python, me, "--role", "relay", "--data", eps[i], "--downstream", eps[i + 1]] for i in range(hops - 1)]
    cmds.append([python, me, "--role", "sender", "--data", eps[0], "--ctrl", eps[-1]])
    return cmds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--role", choices=["sender", "relay", "receiver"], required=True)
    ap.add_argument("--data", required=True, help="data endpoint (bound by sender/relay, connected by the next)")
    ap.add_argument("--ctrl", help="ack endpoint (sender binds, receiver connects)")
    ap.add_argument("--downstream", help="relay: the endpoint it publishes on")
    args = ap.parse_args()
    ctx = zmq.Context(io_threads=1)
    try:
        if args.role == "relay":
            relay(ctx, args.data, args.downstream)
        elif args.role == "sender":
            job = Job.from_env()
            link = ZmqSender(ctx, args.data, args.ctrl)
            run_sender(link, job)
        else:
            job = Job.from_env()
            run_receiver(ZmqReceiver(ctx, args.data, args.ctrl), job)
    except LinkClosed as exc:
        sys.exit(f"zmq baseline {args.role}: {exc}")
    finally:
        ctx.destroy(linger=1000)


if __name__ == "__main__":
    main()
