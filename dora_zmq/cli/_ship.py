"""``dora-zmq start --ship``: pack the dataflow's folder and upload it to the coordinator.

The upload runs on its own control connection: ``OfferBundle`` first (the coordinator answers
where to start: the whole size if it holds the bundle already, so an unchanged folder costs
one round trip), then ``BundleChunk`` messages, each answered with the next offset, up to
``WINDOW_CHUNKS`` ahead of the answers, until the coordinator says it holds the whole bundle,
verified.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .. import _control as ctl
from .._bundle import CHUNK_BYTES, WINDOW_CHUNKS, Bundle, IgnoreRules, encode_chunk, pack_folder
from .._errors import ControlError
from ..descriptor import Dataflow, NodeKind
from ._client import connect_checked

__all__ = ["ENV_SHIP", "Shipping", "not_shipped", "ship_folder", "upload_bundle"]

ENV_SHIP = "DORA_ZMQ_SHIP"
_OFFER_TIMEOUT_S = 10.0
_CHUNK_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Shipping:
    """What a start sends along: the mode, and the bundle with what its upload cost.

    Attributes:
        mode: a ``ShipMode``.
        bundle: the packed folder (None with ``never``).
        folder_id: ``"<st_dev>:<st_ino>"`` of the folder (for ``auto``).
        sent: bytes of the bundle uploaded by this start (0: the coordinator had it).
    """

    mode: str
    bundle: Bundle | None = None
    folder_id: str = ""
    sent: int = 0

    @property
    def ref(self) -> ctl.BundleRef | None:
        """The bundle as named in control messages."""
        return ctl.BundleRef(self.bundle.digest, self.bundle.size) if self.bundle is not None else None


def ship_folder(address: str, dataflow: Dataflow, mode: str, max_bytes: int) -> Shipping:
    """Pack ``dataflow``'s folder and upload it (unless ``mode`` is ``never``).

    Raises:
        BundleError: the folder cannot be packed (too large: the largest files are named).
        ControlError: the coordinator refused the upload or did not answer.
    """
    if mode == ctl.ShipMode.NEVER:
        return Shipping(mode)
    info = os.stat(dataflow.working_dir)
    bundle = pack_folder(dataflow.working_dir, max_bytes=max_bytes)
    sent = upload_bundle(address, bundle)
    return Shipping(mode, bundle, f"{info.st_dev}:{info.st_ino}", sent)


def not_shipped(dataflow: Dataflow) -> list[str]:
    """The programs and operator files the YAML names by a relative path that the bundle
    leaves out (outside the folder, or ignored), each with what will happen.

    Absolute paths and programs found on ``PATH`` are meant to be on each machine: not listed.
    """
    folder = Path(os.path.abspath(dataflow.working_dir))
    rules = IgnoreRules.for_folder(folder)
    named: list[tuple[str, str, Path]] = []  # (node, as written, resolved)
    for node in dataflow.nodes:
        if (
            node.kind is NodeKind.CUSTOM
            and node.path
            and node.executable
            and not os.path.isabs(os.path.expanduser(node.path))
        ):
            named.append((node.id, node.path, node.executable))
        for op in node.operators:
            if op.python is not None and not os.path.isabs(os.path.expanduser(op.source)):
                named.append((f"{node.id}/{op.id}", op.source, op.python))
    problems = []
    for who, written, path in named:
        if not path.is_relative_to(folder):
            if "/" not in written:
                continue  # a bare name resolved outside the folder was found on PATH
            problems.append(f"'{who}': {written} is outside the dataflow's folder {folder}, so it is not shipped")
        elif rules.ignored(path.relative_to(folder).as_posix(), is_dir=False):
            problems.append(
                f"'{who}': {written} is left out by {rules.source or 'the default ignore patterns'},"
                " so it is not shipped"
            )
    return problems


def upload_bundle(address: str, bundle: Bundle) -> int:
    """Upload ``bundle`` to the coordinator at ``address``; returns the bytes sent (0 if it had it).

    Raises:
        ControlError: refused (too large for the coordinator, a digest mismatch...) or no answer.
    """
    sent = 0
    client = connect_checked(address)
    try:
        try:
            reply = client.request(ctl.OfferBundle(ctl.BundleRef(bundle.digest, bundle.size)), _OFFER_TIMEOUT_S)
        except ControlError as exc:
            raise ControlError(
                f"no coordinator answered at {address}: start one with `dora-zmq up` (or pass --coordinator)"
            ) from exc
        acked = sent_to = _offset(reply, bundle)  # the whole size: the coordinator has it already
        while acked < bundle.size:
            # Up to WINDOW_CHUNKS chunks ahead of the last answer: one round trip per window,
            # not per chunk. Answers come in order; the first Failed ends the upload.
            while sent_to < bundle.size and sent_to < acked + WINDOW_CHUNKS * CHUNK_BYTES:
                data = bundle.data[sent_to : sent_to + CHUNK_BYTES]
                client.send(ctl.BundleChunk(bundle.digest, sent_to, encode_chunk(data)))
                sent_to += len(data)
                sent += len(data)
            got = client.recv(int(_CHUNK_TIMEOUT_S * 1000))
            if got is None:
                raise ControlError(
                    f"the coordinator at {address} stopped answering the upload"
                    f" ({acked} of {bundle.size} bytes acknowledged)"
                )
            acked = _offset(got[1], bundle)
    finally:
        client.close()
    return sent


def _offset(reply: object, bundle: Bundle) -> int:
    if isinstance(reply, ctl.Failed):
        raise ControlError(f"the coordinator refused the dataflow's folder: {reply.message}")
    if not isinstance(reply, ctl.BundleWanted) or reply.digest != bundle.digest or not 0 <= reply.offset <= bundle.size:
        raise ControlError(f"unexpected answer to a bundle upload: {reply!r}")
    return reply.offset
