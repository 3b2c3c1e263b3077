"""ExitReports: a node's exit is sent again until the coordinator acknowledges it."""

from __future__ import annotations

import pytest

from dora_zmq import _control as ctl
from dora_zmq.daemon import _exit_reports
from dora_zmq.daemon._exit_reports import ExitReports


def test_report_carries_the_last_sent_counts_and_is_resent_until_acknowledged(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(_exit_reports.time, "monotonic", lambda: now[0])
    reports = ExitReports()
    reports.note_stats(ctl.NodeStats("df", "src", {}, sent={"n": 10}))
    reports.note_stats(ctl.NodeStats("df", "src", {}, sent={"n": 250}))  # its closing report
    msg = reports.report(ctl.NodeExited("df", "src", 0, None, False))
    assert msg.sent == {"n": 250}
    assert reports.due() == []  # just sent
    now[0] += _exit_reports.RESEND_AFTER_S
    assert reports.due() == [msg]
    assert reports.due() == []  # not again at once
    reports.acknowledged("df", "src")
    now[0] += _exit_reports.RESEND_AFTER_S
    assert reports.due() == []


def test_unacknowledged_report_is_given_up_eventually(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(_exit_reports.time, "monotonic", lambda: now[0])
    reports = ExitReports()
    reports.report(ctl.NodeExited("df", "src", None, 9, True, "killed"))
    now[0] += _exit_reports.GIVE_UP_S + 1
    assert reports.due() == []
    now[0] += _exit_reports.RESEND_AFTER_S
    assert reports.due() == []
