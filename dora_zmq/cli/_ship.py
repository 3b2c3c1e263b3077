"""``dora-zmq start --ship``: pack the dataflow's folder and upload it to the coordinator.

The upload is one request/reply per chunk on its own control connection: ``OfferBundle``
first (the coordinator answers where to start: the whole size if it holds the bundle
already, so an unchanged folder costs one round trip), then ``BundleChunk`` until the
coordinator says it holds the whole bundle, verified.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .. import _control as ctl
from .._bundle import CHUNK_BYTES, Bundle, encode_chunk, pack_folder
from .._errors import ControlError
from .._transport import Channel
from ..descriptor import Dataflow
from ._client import ensure_listening

__all__ = ["ENV_SHIP", "Shipping", "ship_folder", "upload_bundle"]

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


def upload_bundle(address: str, bundle: Bundle) -> int:
    """Upload ``bundle`` to the coordinator at ``address``; returns the bytes sent (0 if it had it).

    Raises:
        ControlError: refused (too large for the coordinator, a digest mismatch...) or no answer.
    """
    ensure_listening(address)
    sent = 0
    client = Channel.connect(address)
    try:
        try:
            reply = client.request(ctl.OfferBundle(ctl.BundleRef(bundle.digest, bundle.size)), _OFFER_TIMEOUT_S)
        except ControlError as exc:
            raise ControlError(f"no coordinator answered at {address}: start one with `dora-zmq up` (or pass --coordinator)") from exc
        offset = _offset(reply, bundle)  # the whole size: the coordinator has it already
        while offset < bundle.size:
            data = bundle.data[offset : offset + CHUNK_BYTES]
            offset = _offset(client.request(ctl.BundleChunk(bundle.digest, offset, encode_chunk(data)), _CHUNK_TIMEOUT_S), bundle)
            sent += len(data)
    finally:
        client.close()
    return sent


def _offset(reply: object, bundle: Bundle) -> int:
    if isinstance(reply, ctl.Failed):
        raise ControlError(f"the coordinator refused the dataflow's folder: {reply.message}")
    if not isinstance(reply, ctl.BundleWanted) or reply.digest != bundle.digest or not 0 <= reply.offset <= bundle.size:
        raise ControlError(f"unexpected answer to a bundle upload: {reply!r}")
    return reply.offset
