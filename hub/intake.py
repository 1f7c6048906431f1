"""Intake: the one way in. Every ingress adapter hands a batch of submissions here and
gets one outcome per submission; accepted messages are committed to the spool (in
groups shared by concurrent callers) before this returns. Opt-out lists are checked in
that commit (spool/optouts.py), so every protocol refuses the same messages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import cast

from hub import numbers, optouts, text, waspa
from hub.clock import Clock, utcnow
from hub.errors import Rejected
from hub.groupcommit import GroupCommitter
from hub.idempotency import Answer, Seal
from hub.ids import new_id
from hub.model import (
    Accepted,
    Account,
    Encoding,
    MessageClass,
    NewMessage,
    Outcome,
    Refused,
    Source,
    Submission,
)
from hub.ports import CommitSeal, Committed, MessageStore
from hub.spoolcall import SpoolThreads

log = logging.getLogger(__name__)

MAX_PRIORITY = 9
# What no carrier can send and no database can store: NUL (PostgreSQL text refuses it)
# and UTF-16 surrogates standing alone (JSON's "\ud800" decodes to one; UTF-8 cannot
# encode it, and the driver's error would fail every message committed with it).
_UNSENDABLE = re.compile("[\x00\ud800-\udfff]")
# The times a message may carry, for every protocol alike (README, "The JSON API"): a
# send time a little in the past (a client's clock, a queue ahead of us) means "now";
# one further away, or more than a year ahead, is a mistake, not a plan. Bounded, the
# arithmetic on them can never leave the calendar (year 1 to 9999).
SEND_AT_PAST = timedelta(days=1)
SEND_AT_AHEAD = timedelta(days=366)
MAX_VALIDITY = timedelta(days=366)  # expires_at at most this long after the send time


@dataclass(frozen=True, slots=True)
class IntakeRules:
    """The per-message limits intake enforces, from `[hub]` and `[messages]`."""
    region: str = "ZA"
    max_segments: int = 6
    default_validity: float = 172_800.0  # seconds; 0 = no expiry unless given
    max_client_ref_length: int = 64
    max_text_chars: int = 2000  # a cheap bound before the segment count is measured
    optout_instruction: str = waspa.DEFAULT_INSTRUCTION  # appended to marketing (WASPA)


@dataclass(slots=True)
class Staged:
    """Submissions checked, normalised and priced (Intake.stage), not yet committed: an
    outcome per submission, in order, None where its message is in `ready`."""

    source: Source
    outcomes: list[Outcome | None]
    ready: list[NewMessage]

    def finish(self, done: Sequence[Committed]) -> list[Outcome]:
        """The outcomes, once `ready` is committed with the results `done`."""
        committed = iter(zip(self.ready, done, strict=True))
        result = [o if o is not None else _outcome(*next(committed)) for o in self.outcomes]
        if log.isEnabledFor(logging.DEBUG):  # the extra dict costs a request more than the check
            log.debug("intake", extra={"action": "intake", "source": self.source.value,
                                       "count": len(result)})
        return result


class Intake:
    """The one way in: every ingress adapter hands its submissions to `submit`, which
    checks each (number, text, sender, times, reference), prices it, and commits the
    accepted ones through a GroupCommitter, so concurrent callers share a transaction.
    It returns one Outcome per submission, in order, only after the commit."""

    def __init__(
        self,
        runner: SpoolThreads[MessageStore],
        rules: IntakeRules,
        *,
        group_commit_max: int = 5000,
        clock: Clock = utcnow,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._runner = runner
        self._rules = rules
        self._clock = clock
        # Called after each commit that stored messages; public so that a split node's
        # ingress process can point it at its dispatch process (hub.supervisor).
        self.on_commit = on_commit
        self._expiry_for: tuple[datetime | None, datetime | None] = (None, None)
        self._prices: dict[tuple[Decimal, int], Decimal] = {}
        self._committer: GroupCommitter[NewMessage | CommitSeal, Committed] = (
            GroupCommitter(self._commit, group_commit_max, self._start, self._turn))
        self._loop: asyncio.AbstractEventLoop | None = None  # where on_commit is called
        self._seals = 0  # callers whose items carry a CommitSeal, waiting or in flight

    async def submit(
        self,
        account: Account,
        source: Source,
        submissions: Sequence[Submission],
        *,
        batch_id: str | None = None,
        seal: Seal | None = None,
    ) -> list[Outcome]:
        """Validate, normalise, price and commit; one outcome per submission, in order.
        With a `seal`, its idempotency key is answered in the messages' transaction."""
        staged = self.stage(account, source, submissions, batch_id)
        if seal is None:
            done = await self.commit_soon(staged.ready)
        else:
            self._loop = asyncio.get_running_loop()
            done = await self._sealed(seal, staged.outcomes, staged.ready)
        return staged.finish(done)

    def stage(self, account: Account, source: Source, submissions: Sequence[Submission],
              batch_id: str | None = None) -> Staged:
        """`submit`'s first step: each submission checked, normalised and priced, now."""
        now = self._clock()
        outcomes: list[Outcome | None] = []
        ready: list[NewMessage] = []
        for sub in submissions:
            prepared = self.prepare(account, source, sub, now, batch_id)
            if isinstance(prepared, Refused):
                outcomes.append(prepared)
            else:
                outcomes.append(None)
                ready.append(prepared)
        return Staged(source, outcomes, ready)

    def commit_soon(self, ready: list[NewMessage]) -> asyncio.Future[list[Committed]]:
        """`submit`'s second step: the messages `stage` made ready, committed with the
        next group; the future of their results, in order (Staged.finish reads them).
        Apart for a caller that waits without a task (adapters/http/hot.py)."""
        self._loop = asyncio.get_running_loop()
        return self._committer.enqueue(cast("list[NewMessage | CommitSeal]", ready))

    async def _sealed(self, seal: Seal, outcomes: list[Outcome | None],
                      ready: list[NewMessage]) -> list[Committed]:
        """Commit `ready` behind a CommitSeal (first in the caller's items, so the spool
        finds which messages are its request's): the answer is made from their results
        in the transaction. A request with no message to store commits the seal alone."""

        def answer(done: Sequence[Committed]) -> Answer:
            results = iter(zip(ready, done, strict=True))
            return seal.answer([o if o is not None else _outcome(*next(results))
                                for o in outcomes])

        sealed = CommitSeal(seal.account_id, seal.key, seal.token, len(ready), answer)
        self._seals += 1
        try:
            return (await self._committer.submit([sealed, *ready]))[1:]
        finally:
            self._seals -= 1

    def number(self, raw: str) -> str:
        """A number as intake reads recipients (E.164), for the opt-out lists: Rejected
        ('invalid_number') if it is none."""
        return numbers.normalise(raw, self._rules.region)

    def prepare(
        self,
        account: Account,
        source: Source,
        sub: Submission,
        now: datetime,
        batch_id: str | None = None,
    ) -> NewMessage | Refused:
        """Everything intake checks before the spool: the pure, per-message part."""
        try:
            return self._prepare(account, source, sub, now, batch_id)
        except Rejected as exc:
            return Refused(exc.code, exc.reason)

    def _prepare(
        self, account: Account, source: Source, sub: Submission, now: datetime,
        batch_id: str | None,
    ) -> NewMessage:
        # Intake's per-message hot path: the common cases (no sender, no reference,
        # default class and priority, no times) are tested inline before any call.
        if not account.enabled:
            raise Rejected("account_disabled", f"account '{account.name}' is disabled")
        recipient = numbers.normalise(sub.to, self._rules.region)
        message_class = sub.message_class
        if type(message_class) is not MessageClass:
            message_class = MessageClass(message_class)
        body = sub.text
        if message_class is MessageClass.MARKETING:  # measured and priced as it is sent
            body = waspa.instructed(body, account.marketing_optout,
                                    self._rules.optout_instruction)
        encoding, segments = self._measure(body)
        if sub.send_at is None and sub.expires_at is None:
            send_at, expires_at = None, self._default_expiry(now)
        else:
            send_at, expires_at = self._times(sub, now)
        sender = sub.sender or None
        if sender is not None and sender not in account.sender_ids:
            self._refuse_sender(account, sender)
        client_ref = sub.client_ref or None
        if client_ref is not None:
            self._check_client_ref(client_ref)
        priority = sub.priority
        if priority != 0 and not 0 <= priority <= MAX_PRIORITY:
            raise Rejected("invalid_priority", f"priority must be 0 to {MAX_PRIORITY}")
        return NewMessage(
            new_id(), account.id, source, recipient, body, encoding, segments,
            self._price(account, segments), now,
            send_at if send_at is not None and send_at > now else now,
            sender, client_ref, batch_id, message_class, priority, send_at, expires_at,
            sub.batch_line, sub.callback,
        )

    def _measure(self, body: str) -> tuple[Encoding, int]:
        if not body or not body.strip():
            raise Rejected("empty_text", "the message text is empty")
        if len(body) > self._rules.max_text_chars:
            raise Rejected(
                "too_long",
                f"the text has {len(body)} characters; the limit is "
                f"{self._rules.max_segments} segments",
            )
        encoding, _, segments = text.measure(body)
        if encoding is Encoding.UCS2:  # both are outside GSM 03.38, so only checked here
            bad = _UNSENDABLE.search(body)
            if bad is not None:
                raise Rejected(
                    "invalid_text",
                    f"the text holds a character that cannot be sent (U+{ord(bad.group()):04X} "
                    f"at position {bad.start() + 1}): a NUL or a lone UTF-16 surrogate",
                )
        if segments > self._rules.max_segments:
            raise Rejected(
                "too_long",
                f"the text needs {segments} {encoding.value} segments; "
                f"the limit is {self._rules.max_segments}",
            )
        return encoding, segments

    def _times(self, sub: Submission, now: datetime) -> tuple[datetime | None, datetime | None]:
        for value, name in ((sub.send_at, "send_at"), (sub.expires_at, "expires_at")):
            if value is not None and value.tzinfo is None:
                raise Rejected("invalid_time", f"{name} has no time zone")
        if sub.send_at is not None and not now - SEND_AT_PAST <= sub.send_at <= now + SEND_AT_AHEAD:
            raise Rejected(
                "invalid_time",
                f"send_at {sub.send_at.isoformat()} is out of range: it must lie between "
                f"{(now - SEND_AT_PAST).isoformat()} and {(now + SEND_AT_AHEAD).isoformat()} "
                "(one day ago to 366 days ahead)",
            )
        start = sub.send_at if sub.send_at is not None and sub.send_at > now else now
        expires = sub.expires_at
        if expires is not None and expires > start + MAX_VALIDITY:
            raise Rejected(
                "invalid_time",
                f"expires_at {expires.isoformat()} is out of range: it must lie between the "
                f"send time and 366 days after it ({(start + MAX_VALIDITY).isoformat()})",
            )
        if expires is None and self._rules.default_validity > 0:
            expires = start + timedelta(seconds=self._rules.default_validity)
        if expires is not None and expires <= start:
            raise Rejected(
                "invalid_validity",
                f"the message would expire ({expires.isoformat()}) before it could be sent "
                f"({start.isoformat()})",
            )
        return sub.send_at, expires

    def _default_expiry(self, now: datetime) -> datetime | None:
        if self._rules.default_validity <= 0:
            return None
        if self._expiry_for[0] is not now:
            self._expiry_for = (now, now + timedelta(seconds=self._rules.default_validity))
        return self._expiry_for[1]

    def _price(self, account: Account, segments: int) -> Decimal:
        """price x segments, remembered for the account's price (Decimal arithmetic costs
        about as much as everything else intake does to a plain message)."""
        key = (account.price_per_segment, segments)
        found = self._prices.get(key)
        if found is None:
            if len(self._prices) > 4096:  # prices change rarely; never let it grow unbounded
                self._prices.clear()
            found = self._prices[key] = account.price_per_segment * segments
        return found

    @staticmethod
    def _refuse_sender(account: Account, sender: str) -> None:
        allowed = ", ".join(account.sender_ids) or "none"
        raise Rejected(
            "sender_not_allowed",
            f"sender id '{sender}' is not allowed for account '{account.name}' "
            f"(allowed: {allowed})",
        )

    def _check_client_ref(self, ref: str) -> None:
        if len(ref) > self._rules.max_client_ref_length or not ref.isprintable():
            raise Rejected(
                "invalid_client_ref",
                f"client reference must be printable and at most "
                f"{self._rules.max_client_ref_length} characters",
            )

    # The runner and spool of now, looked up at each use (tests swap the spool).
    def _start(self, drain: Callable[[], None]) -> None:
        self._runner.start(drain)

    def _turn(self) -> AbstractContextManager[None]:
        return self._runner.spool.writer_turn()

    def _commit(self, group: list[NewMessage | CommitSeal]) -> list[Committed]:
        """One group's transaction, on a spool thread (the committer's)."""
        # Rare: only requests with an Idempotency-Key make the group worth scanning.
        results = (self._commit_sealed(group) if self._seals
                   else self._runner.spool.accept(group))  # type: ignore[arg-type]
        if (self.on_commit is not None and self._loop is not None
                and any(r.message is not None for r in results)):
            with contextlib.suppress(RuntimeError):  # a loop closed: nothing to wake
                self._loop.call_soon_threadsafe(self.on_commit)
        return results

    def _commit_sealed(self, group: list[NewMessage | CommitSeal]) -> list[Committed]:
        messages: list[NewMessage] = []
        seals: list[tuple[int, CommitSeal]] = []
        places: list[int] = []  # where each seal sits in the group, for its placeholder
        for place, item in enumerate(group):
            if isinstance(item, CommitSeal):
                seals.append((len(messages), item))
                places.append(place)
            else:
                messages.append(item)
        results = self._runner.spool.accept(messages, seals)
        for place in places:
            results.insert(place, _SEALED)
        return results


_SEALED = Committed()  # a seal's own place in a group's results: no message


def _outcome(new: NewMessage, committed: Committed) -> Outcome:
    if committed.message is not None:
        m = committed.message
        return Accepted(m.id, m.initial_status, m.segments, m.cost, False, m.recipient)
    if committed.duplicate_of is not None:
        d = committed.duplicate_of
        return Accepted(d.id, d.status, d.segments, d.cost, True, d.recipient)
    if committed.account_disabled:
        return Refused("account_disabled", "the account is disabled")
    if committed.barred is not None:
        return optouts.refusal(committed.barred)
    available = committed.insufficient_credit
    return Refused(
        "insufficient_credit",
        f"not enough credit: the message costs {new.cost} and the balance available "
        f"is {available}",
    )
