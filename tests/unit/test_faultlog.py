"""FaultLog: a repeating failure is logged once, again at most once a period with its
count, at once when it changes, and once when it clears."""

from __future__ import annotations

import logging

import pytest

from hub.faultlog import FaultLog


def test_a_repeating_failure_is_logged_once_a_period_and_its_recovery_once(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    faults = FaultLog(logging.getLogger("test.faults"), "claims failing", "claim",
                      every=60, clock=lambda: now[0])
    for _ in range(240):  # a minute of failures every 250 ms
        faults.failed("spool unavailable: attempt to write a readonly database")
        now[0] += 0.25
    faults.failed("spool unavailable: attempt to write a readonly database")
    faults.failed("spool unavailable: disk I/O error")  # a different failure: at once
    faults.cleared()
    faults.cleared()
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        "claims failing: spool unavailable: attempt to write a readonly database",
        "claims failing: spool unavailable: attempt to write a readonly database "
        "(again 239 times in the last 60 s)",
        "claims failing: spool unavailable: disk I/O error",
        "claims failing: recovered",
    ]
    assert not faults.failing
