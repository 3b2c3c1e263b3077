"""Which subscriber a start marker or a shared-memory release really comes from, and what a
node key may subscribe to.

A publisher's XPUB socket does not say which connection a subscription or an upstream message
arrived on, so the claim "I am reader R" travels in the message: a start marker (R attached,
or, unsubscribed, R left) and a release (R dropped these shared-memory messages). Taken on
its word, any connection could start a publisher before R is there, or release R's share of
a segment while R still maps it (the writer would then reuse memory R is reading).

Each node gets from its daemon a *reader token* (derived from a per-dataflow secret the
coordinator gives the daemons) and the tokens of the nodes that read its outputs. A reader
labels its markers and releases ``R/<token>`` (``/`` cannot occur in a node id); a publisher
accepts them as R's only with R's token. The token is known to R, its daemon, and the nodes
R reads from (which see it in R's messages to them): a node R does not read from cannot act
for R. Without tokens (an older daemon) bare names are accepted, as before.

Under CURVE a subscription carries the key of its connection: a ``node`` key (an edge device)
may subscribe to the outputs its node reads, and to start markers (whose claims the tokens
check); daemon keys (the nodes a daemon spawns) and keys with every role to anything.
"""

from __future__ import annotations

import hmac
import logging
from typing import Mapping

from .._wire import MARKER_PREFIX
from ..security import Peer, Role

__all__ = ["ReaderTokens"]

log = logging.getLogger(__name__)


class ReaderTokens:
    """This node's label as a reader, and the check of its readers' labels.

    Owned by whichever thread reads the publisher socket at the time (start-up, then the
    sending thread under the node's send lock); ``rejected`` is only read for reports.
    """

    def __init__(
        self,
        node_id: str,
        own: str,
        readers: dict[str, str] | None,
        topics: Mapping[str, frozenset[bytes]] | None = None,
    ) -> None:
        """``topics``: per reader node, the topics of this node's outputs it reads."""
        self.node_id = node_id
        self._topics = dict(topics or {})
        self.label = f"{node_id}/{own}" if own else node_id
        self._readers = dict(readers or {})
        self._required = bool(own)
        # what (marker, release) -> how many were ignored. Owner: whoever reads the publisher's
        # subscriptions (the start barrier, then the holder of the send lock, see _session).
        self.rejected: dict[str, int] = {}

    def admits(self, peer: Peer, topic: bytes) -> bool:
        """True if the connection with ``peer``'s key may subscribe to ``topic``."""
        if peer.may(Role.DAEMON):
            return True
        if not peer.may(Role.NODE):
            return False
        return topic.startswith(MARKER_PREFIX) or topic in self._topics.get(peer.name, frozenset())

    def reader_of(self, label: str, what: str) -> str | None:
        """The node a marker's or release's ``label`` proves to be, or None (logged, counted)."""
        node, sep, token = label.rpartition("/")
        if not self._required:
            return label if not sep else node
        expected = self._readers.get(node) if sep else None
        if expected is not None and hmac.compare_digest(expected.encode(), token.encode()):
            return node
        count = self.rejected[what] = self.rejected.get(what, 0) + 1
        if count == 1 or count % 100 == 0:  # a flood of forgeries must not flood the log
            claimed = node if sep else label
            log.warning(
                "node %s: ignored %s claiming to come from reader '%s' without its token (%d so far)",
                self.node_id,
                what,
                claimed,
                count,
            )
        return None
