"""Shipping a dataflow's folder to the machines that run its nodes.

Without it a daemon runs a node's ``path:`` from the folder the YAML was started from, so that
folder must exist at the same path on every machine. With it, ``dora-zmq start`` packs the
folder (:func:`pack_folder`: what ``.dora-zmq-ignore`` and the defaults keep, within a size
limit) into a deterministic ``tar.gz`` named by its sha256, uploads it to the coordinator in
chunks unless the coordinator has it already, and each daemon that needs it fetches it from
the coordinator chunk by chunk unless its own cache has it, verifies the digest, and unpacks
it (:func:`unpack_bundle`, which treats the archive as hostile) into the dataflow's run folder.

Pieces, one job each:

- ``_transfer``: the contract both ends share (digest form, chunk size and codec, limits,
  where caches live);
- ``_ignore``: which files are left out;
- ``_pack``: folder -> bundle, on the user's machine;
- ``_store``: the content-addressed, bounded cache and the receiving end of a transfer;
- ``_unpack``: bundle -> folder, on a daemon's machine.

No sockets here: the messages that carry chunks are in ``dora_zmq._control``, and who sends
them when is the CLI's, coordinator's and daemon's business.
"""

from __future__ import annotations

from ._ignore import DEFAULT_IGNORE, IGNORE_FILE, IgnoreRules
from ._pack import Bundle, pack_folder
from ._store import BundleReceiver, BundleStore, file_digest
from ._transfer import (
    CHUNK_BYTES,
    ENV_CACHE_DIR,
    ENV_MAX_SIZE,
    WINDOW_CHUNKS,
    BundleLimits,
    cache_root,
    check_digest,
    decode_chunk,
    encode_chunk,
    parse_size,
    short_digest,
)
from ._unpack import unpack_bundle

__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_IGNORE",
    "ENV_CACHE_DIR",
    "ENV_MAX_SIZE",
    "IGNORE_FILE",
    "WINDOW_CHUNKS",
    "Bundle",
    "BundleLimits",
    "BundleReceiver",
    "BundleStore",
    "IgnoreRules",
    "cache_root",
    "check_digest",
    "decode_chunk",
    "encode_chunk",
    "file_digest",
    "pack_folder",
    "short_digest",
    "parse_size",
    "unpack_bundle",
]
