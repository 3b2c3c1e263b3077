"""short_digest: the one way logs and errors name a bundle (daemon, coordinator, store)."""

from __future__ import annotations

from dora_zmq._bundle import short_digest
from dora_zmq._bundle._transfer import SHORT_DIGEST_CHARS


def test_short_digest_is_the_digests_first_hex_digits() -> None:
    digest = "0123456789abcdef" * 4
    assert short_digest(digest) == digest[:SHORT_DIGEST_CHARS] == "0123456789ab"
