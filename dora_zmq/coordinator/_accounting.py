"""Messages of a finished dataflow that no counter accounts for: sent, but never delivered.

A node leaves its event loop on STOP without waiting for what is still in flight to it, and
what a sender sends after its subscribers stopped reaches nobody. Neither is a drop
(``queue_size``) nor a loss in transit (a gap in the sequence numbers), so each input's
counters alone cannot show it. The coordinator has both ends: each sender's final count per
output (its exit report, ``NodeExited.sent``, or its last ``NodeStats``) and each receiver's
final counters (the ``NodeStats`` a node sends as it closes, before its exit). Per input::

    undelivered = sent - (handed to the node's code + dropped + lost)

where handed = received - dropped - still queued at its close (``NodeStats.received`` counts
every INPUT queued, dropped ones included). So for every input of a finished dataflow
handed + dropped + lost + undelivered == sent, exactly, whenever both ends sent their final
counters. A node killed without closing (SIGKILL) has only its last periodic counters (at
most ``_STATS_EVERY_S`` old): what it received after them counts as undelivered.

A pure function over the coordinator's tables, called on its event-loop thread.
"""

from __future__ import annotations

from ..descriptor.models import OutputRef
from ._state import DataflowRun

__all__ = ["undelivered"]


def undelivered(run: DataflowRun) -> dict[str, int]:
    """``receiver/input`` -> messages sent to it and never accounted for, when positive.

    Only for a finished dataflow (while it runs, a message in flight is not yet undelivered).
    Inputs of a node that restarted, or fed by one, are left out: their counters start again
    at each restart.
    """
    if not run.finished:
        return {}
    counts: dict[str, int] = {}
    for spec in run.descriptor.nodes:
        stats = run.stats.get(spec.id)
        if stats is None or stats.received is None or run.restarts.get(spec.id):
            continue
        queued = stats.queued or {}
        lost = stats.lost or {}
        for input_id, inp in spec.inputs.items():
            if not isinstance(inp.source, OutputRef) or run.restarts.get(inp.source.node):
                continue
            sent = _sent(run, inp.source)
            if sent is None or input_id not in stats.received:
                continue
            handed = stats.received[input_id] - queued.get(input_id, 0)  # dropped included
            missing = sent - handed - lost.get(input_id, 0)
            if missing > 0:
                counts[f"{spec.id}/{input_id}"] = missing
    return counts


def _sent(run: DataflowRun, ref: OutputRef) -> int | None:
    """What ``ref``'s node says it sent on that output: its exit report's count, else its last counters."""
    notice = run.exit_notices.get(ref.node)
    if notice is not None and notice.sent is not None and ref.output in notice.sent:
        return notice.sent[ref.output]
    stats = run.stats.get(ref.node)
    if stats is not None and stats.sent is not None and ref.output in stats.sent:
        return stats.sent[ref.output]
    return None
