"""Differential tests: each program of streams_cases.py must give the same summary on
degirum_tools.streams (the newest pinned release, and 0.25.1) and on dora_zmq.streams.

A difference is allowed only where it is listed below with its reason, and the README's
list of deliberate differences says the same; a listed difference that disappears fails
too, so neither list can go stale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .streams_cases import CASES
from .streams_refs import LATEST, OLDER, Implementation, ours, reference, run_cases

pytestmark = pytest.mark.timeout(180)

DELIBERATE: dict[str, str] = {
    "bottlenecks_on_two_inputs": "get_bottlenecks() counts the drops of all a gizmo's inputs, as its docs say; "
    "degirum reports only the first input that dropped",
    "detect_bottlenecks_leaves_allow_drop": "detect_bottlenecks=True switches streams to dropping for that run only; "
    "degirum leaves them dropping for every later run",
    "duplicate_tag_in_list": "a tag listed twice labels the object once; degirum's find() returns it twice",
    "gizmo_error_type": "gizmo.error is the exception run() raised (type and traceback kept); degirum wraps its text "
    "in a DegirumException",
    "list_of_gizmos": "Composition() takes any iterable of gizmos (a list too), as its docs say; degirum takes "
    "only iterators and raises for a list",
    "shared_default_meta": "StreamData(x) gets a new StreamMeta; degirum's default is one object shared by every "
    "StreamData built without meta",
    "stream_minimum_depth": "Stream.min_queue_size is 1: close() never blocks and makes room for its pill itself, "
    "so degirum's slack of 3 is not needed",
    "with_body_error_and_gizmo_error": "when the body of a with-block raises, that exception propagates (gizmo "
    "errors are added as a note); degirum replaces it with the gizmo errors",
    "add_while_running": "adding a gizmo to a running composition raises; degirum adds it without starting it",
    "send_plain_value": "send_result() passes on any object; degirum needs a StreamData (it stamps its meta) and "
    "fails the gizmo otherwise",
    "tuple_of_tags": "a tuple of tags is several tags, like a list; degirum takes a tuple as one tag",
    "drop_oldest_after_close": "a dropping stream never drops its end-of-stream pill (it drops the oldest data "
    "item); degirum can drop the pill, and a reader then waits for ever",
    "close_a_full_stream": "close() never blocks: on a full stream it drops the oldest item for its pill; "
    "degirum's close() waits until a reader makes room",
    "library_sink_default_depth": "SinkGizmo()'s input is unbounded by default (stream_depth=N bounds it); "
    "degirum's depth of 10 blocks a pipeline whose results are read after start() returns",
    "connected_gizmo_not_added": "a gizmo connected to a member joins the composition at start(); degirum "
    "runs only the gizmos added, and the others' items are never read",
    "library_iterator_source_other_items": "IteratorSourceGizmo sends any item (only NumPy images get degirum's "
    "conversion and video meta); degirum raises for anything but an image, a file path or a PIL image",
}
"""Case -> why dora_zmq differs from every degirum_tools release on purpose."""

OLDER_ONLY: dict[tuple[str, str], str] = {
    ("gizmo_without_run", "0.25.1"): "0.25.1's Gizmo is abstract; later releases (and dora_zmq) allow a gizmo "
    "without run(), which gets no thread",
    ("wait_before_start", "0.25.1"): "0.25.1's wait() raises when no thread runs; later releases return",
    ("wait_after_start", "0.25.1"): "0.25.1's wait() raises when no thread runs; later releases return",
    ("stop_after_the_end", "0.25.1"): "0.25.1's stop() raises when no thread runs; later releases return",
    ("start_raises_gizmo_error", "0.25.1"): "0.25.1's wait()/stop() after the run raise 'not started' instead of "
    "the gizmo error again",
    ("stream_close_force", "0.25.1"): "close(force=True) came after 0.25.1",
    ("library_iterator_source_images", "0.25.1"): "IteratorSourceGizmo(fps=...) came after 0.25.1",
    ("empty_composition", "0.25.1"): "0.25.1's stop() raises when no thread runs; later releases return",
    ("run_again_after_stop", "0.25.1"): "0.25.1's stop() raises when no thread runs; later releases return",
}
"""(case, older release) -> how that release differs from the newest one, which dora_zmq follows."""

OLDER_RACY: dict[tuple[str, str], str] = {
    ("gizmo_stops_its_own_composition", "0.25.1"): "0.25.1 raises 'Composition not started' from the owner's "
    "wait() or not, depending on which thread clears its thread list first",
}
"""(case, older release) -> why that release gives no stable answer to compare with."""

LABELS = [LATEST, *OLDER]


@pytest.fixture(scope="session")
def summaries(reference_python: Path) -> dict[str, dict[str, Any]]:
    """Every case's summary on dora_zmq and on each installed degirum_tools release."""
    impls: list[Implementation] = [ours()]
    impls += [impl for label in LABELS if (impl := reference(label)) is not None]
    return run_cases(impls)


def _summary(summaries: dict[str, dict[str, Any]], impl: Implementation, name: str) -> Any:
    return summaries[impl.label]["results"][name]


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_same_as_degirum(summaries: dict[str, dict[str, Any]], name: str, label: str) -> None:
    ref = reference(label)
    if ref is None:
        pytest.skip(f"degirum_tools {label} is not installed: run `make compat-venv`")
    if (name, label) in OLDER_RACY:
        pytest.skip(OLDER_RACY[(name, label)])
    theirs = _summary(summaries, ref, name)
    mine = _summary(summaries, ours(), name)
    assert mine != {"hung": True}, f"{name} hung on dora_zmq"
    uncaught = summaries[ours().label]["uncaught_texts"].get(name)
    reason = DELIBERATE.get(name) or OLDER_ONLY.get((name, label))
    if reason is None:
        assert mine == theirs, f"{name}: dora_zmq differs from {ref.label} (dora_zmq raised: {uncaught!r})"
    else:
        assert mine != theirs, f"{name} is listed as a difference ({reason}) but now behaves the same: unlist it"


def test_every_listed_difference_is_a_case() -> None:
    assert set(DELIBERATE) <= set(CASES)
    assert {name for name, _ in OLDER_ONLY} <= set(CASES)
    assert {label for _, label in OLDER_ONLY} <= set(OLDER)
    assert {name for name, _ in OLDER_RACY} <= set(CASES)
