"""The one duration parser of the CLI."""

from __future__ import annotations

import click
import pytest

from dora_zmq.cli._duration import DURATION, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5.0), ("2m", 120.0), ("1h", 3600.0), ("500ms", 0.5), ("3", 3.0), ("2.5", 2.5), ("0", 0.0),
     ("1h30m", 5400.0), ("1m30s", 90.0), (" 10S ", 10.0), ("1.5s", 1.5), ("1d", 86400.0)],
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
