"""Durations on the command line: ``500ms``, ``5s``, ``2m``, ``1h``, ``1h30m`` or bare seconds.

One parser for every option that takes a duration (``run --stop-after``, ``logs --since``,
``--grace-duration``...), so they all accept the same spellings and fail with the same message;
:func:`parse_since` adds points in time (``logs --since``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from typing import Any

import click

__all__ = ["DURATION", "Duration", "parse_duration", "parse_since"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)")
_HELP = "a number of seconds or a duration such as 500ms, 5s, 2m, 1h, 1h30m"


def parse_duration(text: str) -> float:
    """Seconds in ``text``: bare seconds (``2.5``) or number+unit parts (``1m30s``, ``500ms``).

    Raises:
        click.BadParameter: not a duration, negative, or not finite.
    """
    spelled = text.strip().lower()
    try:
        seconds = float(spelled)
    except ValueError:
        seconds = _parse_units(text, spelled)
    if not math.isfinite(seconds) or seconds < 0:
        raise click.BadParameter(f"{text!r} is not a duration ({_HELP}; not negative)")
    return seconds


def _parse_units(original: str, spelled: str) -> float:
    pos = 0
    total = 0.0
    for match in _PART.finditer(spelled):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(spelled):
        raise click.BadParameter(f"{original!r} is not a duration ({_HELP})")
    return total


def parse_since(text: str, now: float | None = None) -> float:
    """Unix time from ``--since``: a duration ago (``30s``, ``5m``) or a local date/time
    (``2026-12-06T03:00:00``, ``2026-12-06 03:00``, ``03:00:00`` today; ``Z``/offsets honoured).

    Raises:
        click.BadParameter: neither.
    """
    now = time.time() if now is None else now
    try:
        return now - parse_duration(text)
    except click.BadParameter:
        pass
    spelled = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = dt.datetime.fromisoformat(spelled)
    except ValueError:
        try:
            clock = dt.time.fromisoformat(spelled)
        except ValueError:
            raise click.BadParameter(
                f"{text!r} is neither a duration ({_HELP}) nor a time (2026-12-06T03:00:00, 03:00:00)"
            ) from None
        moment = dt.datetime.combine(dt.datetime.fromtimestamp(now).date(), clock)
    return moment.timestamp()  # a naive time is local time


class Duration(click.ParamType):
    """A click parameter type giving seconds (float) from :func:`parse_duration`."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            return parse_duration(str(value))
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


#: The shared instance: ``@click.option("--stop-after", type=DURATION)``.
DURATION = Duration()
