"""The receipt timeout rule: a fixed wait after submission, or validity plus a margin,
or a fallback for a message with no validity."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from hub.model import Encoding, Message, MessageClass, Source, Status
from hub.policies import ReceiptTimeout
from hub.ports import ReportDeadline

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def submitted(**changes: object) -> Message:
    base = Message(
        id="m1", account_id=1, source=Source.REST, recipient="+27821234567", text="hi",
        encoding=Encoding.GSM7, segments=1, cost=Decimal("0.25"), status=Status.SUBMITTED,
        attempts=1, message_class=MessageClass.TRANSACTIONAL, priority=0,
        accepted_at=NOW, updated_at=NOW, due_at=NOW, carrier="sim", carrier_message_id="c1",
        submitted_at=NOW,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_default_waits_for_validity_plus_an_hour_or_48_hours_without_validity() -> None:
    rule = ReceiptTimeout()
    assert rule.due(submitted(expires_at=NOW + 2 * HOUR)) == NOW + 3 * HOUR
    assert rule.due(submitted()) == NOW + 48 * HOUR
    assert rule.deadline("sim", NOW) == ReportDeadline("sim", NOW - 48 * HOUR, NOW - HOUR)


def test_a_fixed_timeout_counts_from_submission_whatever_the_validity() -> None:
    rule = ReceiptTimeout(timeout=600)
    assert rule.due(submitted(expires_at=NOW + 2 * HOUR)) == NOW + timedelta(seconds=600)
    assert rule.deadline("sim", NOW) == ReportDeadline("sim", NOW - timedelta(seconds=600))
    assert rule.due(submitted(submitted_at=None)) is None


def test_negative_or_empty_waits_are_refused() -> None:
    for bad in ({"timeout": -1}, {"margin": -1}, {"fallback": 0}):
        with pytest.raises(ValueError, match="receipt timeout"):
            ReceiptTimeout(**bad)  # type: ignore[arg-type]
