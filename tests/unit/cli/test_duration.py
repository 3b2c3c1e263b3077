"""The one duration parser of the CLI."""

from __future__ import annotations

import click
import pytest

from dora_zmq.cli._duration import DURATION, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5s", 5.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("500ms", 0.5),
        ("3", 3.0),
        ("2.5", 2.5),
        ("0", 0.0),
        ("1h30m", 5400.0),
        ("1m30s", 90.0),
        (" 10S ", 10.0),
        ("1.5s", 1.5),
        ("1d", 86400.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "5x", "-1", "-5s", "5 s", "inf", "nan", "1s2", "ms5", "5sm", "1e400"])
def test_not_durations(text: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_duration(text)


def test_as_click_type() -> None:
    @click.command()
    @click.option("--after", type=DURATION)
    def cmd(after: float) -> None:
        click.echo(repr(after))

    from click.testing import CliRunner

    ok = CliRunner().invoke(cmd, ["--after", "250ms"])
    assert ok.exit_code == 0 and ok.output.strip() == "0.25"
    bad = CliRunner().invoke(cmd, ["--after", "soon"])
    assert bad.exit_code == 2 and "'soon' is not a duration" in bad.output


def test_since_a_duration_or_a_time() -> None:
    import datetime as dt

    from dora_zmq.cli._duration import parse_since

    now = dt.datetime(2026, 12, 6, 3, 30, 0).timestamp()  # local time
    assert parse_since("5m", now) == now - 300
    assert parse_since("90", now) == now - 90
    assert parse_since("2026-12-06T03:00:00", now) == now - 1800
    assert parse_since("2026-12-06 03:00", now) == now - 1800
    assert parse_since("03:00", now) == now - 1800  # today
    assert parse_since("2026-12-06T03:00:00Z", now) == dt.datetime(2026, 12, 6, 3, tzinfo=dt.timezone.utc).timestamp()
    for text in ("yesterday", "25:00", "2026-13-01"):
        with pytest.raises(click.BadParameter):
            parse_since(text, now)
