"""Retry policy: capped exponential backoff with jitter, give-up and expiry decisions."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hub.model import (
    Encoding,
    ErrorInfo,
    Message,
    MessageClass,
    Source,
    Status,
    SubmitResult,
    Verdict,
)
from hub.policies import RetryPolicy

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
BUSY = SubmitResult("m1", Verdict.RETRY, error=ErrorInfo("throttled", "slow down"))


def message(**changes: object) -> Message:
    base = Message(
        id="m1", account_id=1, source=Source.REST, recipient="+27821234567", text="hi",
        encoding=Encoding.GSM7, segments=1, cost=Decimal("0.25"), status=Status.SENDING,
        attempts=1, message_class=MessageClass.TRANSACTIONAL, priority=0,
        accepted_at=NOW, updated_at=NOW, due_at=NOW,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_backoff_doubles_from_base_is_capped_and_jittered_within_half_to_full() -> None:
    policy = RetryPolicy(max_attempts=20, base=5, cap=60)
    rand = random.Random(7)
    for attempts, ceiling in [(1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (12, 60)]:
        samples = [policy.backoff(attempts, rand) for _ in range(200)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert max(samples) - min(samples) > ceiling / 10  # jitter really spreads


def test_temporary_error_requeues_with_a_due_time_in_the_backoff_window() -> None:
    t = RetryPolicy(base=5, cap=60).decide(message(attempts=2), "sim", BUSY, NOW)
    assert t.status is Status.QUEUED and t.error == BUSY.error and not t.refund
    assert t.due_at is not None
    assert NOW + timedelta(seconds=5) <= t.due_at <= NOW + timedelta(seconds=10)


def test_a_retry_is_due_no_earlier_than_the_one_ahead_of_it() -> None:
    policy = RetryPolicy(base=5, cap=60)
    ahead = NOW + timedelta(seconds=9)
    t = policy.decide(message(attempts=1), "sim", BUSY, NOW, not_before=ahead)
    assert t.due_at == ahead and "retry at 2026-11-25T10:00:09" in t.detail
    later = NOW + timedelta(seconds=1)  # already earlier than its own backoff: no change
    t = policy.decide(message(attempts=2), "sim", BUSY, NOW, not_before=later)
    assert t.due_at is not None and t.due_at >= NOW + timedelta(seconds=5)


def test_retries_stop_after_max_attempts_with_a_refund() -> None:
    t = RetryPolicy(max_attempts=3).decide(message(attempts=3), "sim", BUSY, NOW)
    assert t.status is Status.FAILED and t.refund
    assert t.error is not None and t.error.code == "retries_exhausted"
    assert "slow down" in t.error.text


def test_retries_stop_after_max_age() -> None:
    old = message(accepted_at=NOW - timedelta(hours=2))
    t = RetryPolicy(max_age=3600).decide(old, "sim", BUSY, NOW)
    assert t.status is Status.FAILED


def test_a_retry_that_would_fall_after_expiry_expires_instead() -> None:
    t = RetryPolicy(base=60, cap=60).decide(
        message(expires_at=NOW + timedelta(seconds=10)), "sim", BUSY, NOW)
    assert t.status is Status.EXPIRED and t.refund


def test_permanent_error_rejects_at_once_with_the_carrier_code() -> None:
    result = SubmitResult("m1", Verdict.REJECTED, error=ErrorInfo("invalid_destination", "no"))
    t = RetryPolicy().decide(message(attempts=1), "sim", result, NOW)
    assert t.status is Status.REJECTED and t.error == result.error and t.carrier == "sim"


def test_submitted_records_the_carrier_and_its_id() -> None:
    result = SubmitResult("m1", Verdict.SUBMITTED, carrier_message_id="c-1")
    t = RetryPolicy().decide(message(), "sim", result, NOW)
    assert (t.status, t.carrier, t.carrier_message_id) == (Status.SUBMITTED, "sim", "c-1")
