"""Two "hosts" on one machine for the ``tcp-netns`` variant: network namespaces on a bridge.

The namespaces are made by the repository's one namespace helper, ``tests/multihost/netns.py``
(which also says how they are named, cleaned up, and protected against SIGTERM); this module only
shapes it for the benchmark: hosts ``h1`` and ``h2`` (their names are the dataflow's machine ids),
namespaces named ``dzbench-<pid>-*`` so that a later benchmark removes those a killed one left.
Needs root and iproute2 (``ip``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from multihost.netns import Host, NetnsError, Network  # noqa: E402
from multihost.netns import netns_unavailable as unavailable  # noqa: E402

__all__ = ["Host", "NetnsError", "TwoHosts", "unavailable"]

PREFIX = "dzbench"


class TwoHosts:
    """``h1`` and ``h2`` on a bridge; a context manager that always deletes what it made."""

    def __init__(self) -> None:
        self._net: Network | None = None
        self.stale_removed: list[str] = []

    @property
    def hosts(self) -> tuple[Host, Host]:
        """(``h1``, ``h2``): the sender's host, the receiver's."""
        assert self._net is not None, "TwoHosts is used inside its `with` block"
        return (self._net.hosts["h1"], self._net.hosts["h2"])

    def __enter__(self) -> TwoHosts:
        net = Network(prefix=PREFIX)
        net.add_host("h1")  # a failing add_host deletes the whole network
        net.add_host("h2")
        self._net, self.stale_removed = net, net.stale_removed
        return self

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._net is not None:
            self._net.close()
