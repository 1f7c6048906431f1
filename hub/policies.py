"""Policies the dispatcher applies to carrier answers: retry with capped exponential
backoff and jitter, give up after the configured attempts or age, expire by validity;
and how long a submitted message waits for its delivery report."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.model import ErrorInfo, Message, Status, SubmitResult, Transition, Verdict
from hub.ports import ReportDeadline


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Decides what a failed attempt leads to: another attempt after capped, jittered
    exponential backoff, or giving up (too many attempts, too old, or expired)."""
    max_attempts: int = 8
    base: float = 5.0
    cap: float = 600.0
    max_age: float = 86_400.0

    def backoff(self, attempts: int, rand: random.Random | None = None) -> float:
        """Seconds before attempt `attempts + 1`: doubling from `base`, capped, with jitter
        in [half, full] so a burst of failures does not come back as one burst."""
        ceiling = min(self.cap, self.base * 2.0 ** max(attempts - 1, 0))
        jitter: float = (rand or random).random()
        return ceiling * (0.5 + 0.5 * jitter)

    def decide(
        self, message: Message, carrier: str, result: SubmitResult, now: datetime,
        not_before: datetime | None = None,
    ) -> Transition:
        """What `result` leads to; a retry is due no earlier than `not_before` (that of
        the recipient's message claimed ahead of this one: see Dispatcher._process)."""
        if result.verdict is Verdict.SUBMITTED:
            return Transition(
                message.id,
                Status.SUBMITTED,
                detail=f"submitted to {carrier} as {result.carrier_message_id}",
                carrier=carrier,
                carrier_message_id=result.carrier_message_id,
                part_ids=result.part_ids if len(result.part_ids) > 1 else (),
            )
        error = result.error or ErrorInfo("carrier_error", "the carrier gave no reason")
        if result.verdict is Verdict.REJECTED:
            return Transition(
                message.id, Status.REJECTED, detail=f"{carrier}: {error.text}",
                carrier=carrier, error=error, refund=True,
            )
        return self.retry_or_give_up(message, error, now, carrier, not_before)

    def retry_or_give_up(
        self, message: Message, error: ErrorInfo, now: datetime, carrier: str | None = None,
        not_before: datetime | None = None,
    ) -> Transition:
        age = (now - message.accepted_at).total_seconds()
        if message.attempts >= self.max_attempts or age >= self.max_age:
            why = (f"after {message.attempts} attempts" if message.attempts >= self.max_attempts
                   else f"after {age:.0f} s")
            return Transition(
                message.id, Status.FAILED, detail=f"gave up {why}: {error.text}",
                carrier=carrier,
                error=ErrorInfo("retries_exhausted", f"gave up {why}; last error: {error.text}"),
                refund=True,
            )
        due = now + timedelta(seconds=self.backoff(message.attempts))
        if not_before is not None and not_before > due:
            due = not_before
        if message.expires_at is not None and due >= message.expires_at:
            return expire(message, f"would expire before the next attempt ({error.text})")
        return Transition(
            message.id, Status.QUEUED,
            detail=f"retry at {due.isoformat(timespec='seconds')}: {error.text}",
            carrier=carrier, error=error, due_at=due,
        )


def expire(message: Message, why: str = "validity period ended before submission") -> Transition:
    return Transition(
        message.id, Status.EXPIRED, detail=why,
        error=ErrorInfo("expired", why), refund=True,
    )


@dataclass(frozen=True, slots=True)
class ReceiptTimeout:
    """How long one carrier's submitted messages wait for a final delivery report before
    they fail as `no_delivery_report` (charged: the carrier took them). Each carrier's
    section makes one. `timeout` > 0: that many seconds after submission, whatever the
    validity. 0, the default: the end of the message's validity plus `margin` (an SMSC
    reports an expiry at the end of validity, later under load), or `fallback` seconds
    after submission for a message with no validity."""
    timeout: float = 0.0
    margin: float = 3600.0
    fallback: float = 172_800.0

    def __post_init__(self) -> None:
        if self.timeout < 0 or self.margin < 0 or self.fallback <= 0:
            raise ValueError("receipt timeout: timeout and margin 0 or more, fallback > 0")

    def deadline(self, carrier: str, now: datetime) -> ReportDeadline:
        """The cut-offs at `now`: who submitted to `carrier` has waited long enough."""
        if self.timeout > 0:
            return ReportDeadline(carrier, now - timedelta(seconds=self.timeout))
        return ReportDeadline(carrier, now - timedelta(seconds=self.fallback),
                              expired_by=now - timedelta(seconds=self.margin))

    def due(self, message: Message) -> datetime | None:
        """When `message` stops waiting for its report (None: it was never submitted)."""
        if self.timeout == 0 and message.expires_at is not None:
            return message.expires_at + timedelta(seconds=self.margin)
        if message.submitted_at is None:
            return None
        wait = self.timeout or self.fallback
        return message.submitted_at + timedelta(seconds=wait)
