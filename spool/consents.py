"""Consents in the spool (hub/consents.py), and CPA regulation 4 applied where a
marketing message becomes due: in intake's commit and in the dispatcher's claim, each
in its own transaction, so a held message never reaches `sending`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    ForeignKey,
    Integer,
    Table,
    Text,
    bindparam,
    delete,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from hub import cpa
from hub.consents import Consent
from hub.model import ErrorInfo, Message, MessageClass, NewMessage, Status
from spool.engine import Database
from spool.ledger import NO_LEASE, Event, add_events, event, refund
from spool.rows import chunks
from spool.tables import UtcTime, messages, metadata

consents = Table(
    "consents",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), primary_key=True),
    Column("number", Text, primary_key=True),
    Column("created_at", UtcTime, nullable=False),
    Column("note", Text),
)
c = consents
m = messages
Pair = tuple[int, str]


def _consent(row: object) -> Consent:
    return Consent(row.account_id, row.number, row.created_at, row.note)  # type: ignore[attr-defined]


def add(db: Database, new: Consent) -> tuple[Consent, bool, int]:
    """The account's consent for the number, whether it was recorded now (one already
    there is kept as it was), and how many of the account's messages to the number it
    released from a CPA hold, in the same transaction."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    with db.write() as conn:
        done = conn.execute(dialect.insert(c).values(
            account_id=new.account_id, number=new.number, created_at=new.created_at,
            note=new.note).on_conflict_do_nothing().returning(c.c.number)).first()
        row = conn.execute(select(c).where(c.c.account_id == new.account_id,
                                           c.c.number == new.number)).one()
        released = release(conn, new.account_id, new.number, new.created_at)
    return _consent(row), done is not None, released


RELEASED = ("released: the recipient's consent to direct marketing at other times is "
            f"recorded ({cpa.REGULATION})")


def release(conn: Connection, account_id: int, number: str, now: datetime) -> int:
    """The account's messages to `number` held by CPA regulation 4 become due again when
    they were first due (their send-at, else their acceptance; now if that has passed),
    so they go at once and in their original order; each gets an audit event."""
    held = conn.execute(
        select(m.c.id, m.c.send_at, m.c.accepted_at, m.c.attempts)
        .where(m.c.account_id == account_id, m.c.recipient == number,
               m.c.status == Status.SCHEDULED.value, m.c.error_code == cpa.HELD)
        # One a claim is taking at its opening moment is the claim's (PostgreSQL).
        .order_by(m.c.id).with_for_update(skip_locked=True)).all()
    if not held:
        return 0
    changes: list[dict[str, Any]] = []
    events: list[Event] = []
    for row in held:
        due = max(row.send_at or row.accepted_at, now)
        status = (Status.SCHEDULED if due > now
                  else Status.ACCEPTED if row.attempts == 0 else Status.QUEUED)
        changes.append({"b_id": row.id, "b_status": status.value, "b_due": due})
        events.append(event(row.id, now, status, RELEASED))
    conn.execute(update(m).where(m.c.id == bindparam("b_id"),
                                 m.c.status == Status.SCHEDULED.value)
                 .values(status=bindparam("b_status"), due_at=bindparam("b_due"),
                         error_code=None, error_text=None, updated_at=now), changes)
    add_events(conn, events)
    return len(held)


def remove(db: Database, account_id: int, number: str) -> bool:
    with db.write() as conn:
        done = conn.execute(delete(c).where(c.c.account_id == account_id, c.c.number == number))
    return bool(done.rowcount)


def listed(db: Database, account_id: int, after: str, limit: int) -> list[Consent]:
    """One page of the account's consents, by number, after `after` ("" first)."""
    query = (select(c).where(c.c.account_id == account_id, c.c.number > after)
             .order_by(c.c.number).limit(limit))
    with db.read() as conn:
        return [_consent(row) for row in conn.execute(query)]


def consented(conn: Connection, pairs: set[Pair]) -> set[Pair]:
    """Which (account, number) pairs have a consent on record."""
    found: set[Pair] = set()
    for part in chunks(sorted(pairs)):
        query = select(c.c.account_id, c.c.number).where(
            tuple_(c.c.account_id, c.c.number).in_(part))
        found.update((row.account_id, row.number) for row in conn.execute(query))
    return found


# --- intake's commit ------------------------------------------------------------------


def hold_new(conn: Connection, group: Sequence[NewMessage]
             ) -> tuple[list[NewMessage], dict[str, ErrorInfo]]:
    """The group with each marketing message due outside the hours moved to the next
    allowed moment, unless its account has the recipient's consent; and the reason
    each moved one waits. A transactional group costs one comparison per message."""
    holds: dict[datetime, tuple[datetime, ErrorInfo] | None] = {}
    wanted: dict[int, tuple[datetime, ErrorInfo]] = {}
    for place, nm in enumerate(group):
        if nm.message_class is not MessageClass.MARKETING:
            continue
        if nm.due_at not in holds:  # a group shares one acceptance time: checked once
            holds[nm.due_at] = cpa.hold(nm.due_at)
        found = holds[nm.due_at]
        if found is not None:
            wanted[place] = found
    if not wanted:
        return list(group), {}
    agreed = consented(conn, {(group[p].account_id, group[p].recipient) for p in wanted})
    out = list(group)
    reasons: dict[str, ErrorInfo] = {}
    for place, (until, why) in wanted.items():
        nm = group[place]
        if (nm.account_id, nm.recipient) not in agreed:
            out[place] = replace(nm, due_at=until)
            reasons[nm.id] = why
    return out, reasons


def note_holds(conn: Connection, reasons: dict[str, ErrorInfo]) -> None:
    """Held messages carry their reason, as their status answers show it."""
    if reasons:
        conn.execute(_NOTE, [{"b_id": k, "b_code": v.code, "b_text": v.text}
                             for k, v in reasons.items()])


_NOTE = (update(m).where(m.c.id == bindparam("b_id"))
         .values(error_code=bindparam("b_code"), error_text=bindparam("b_text")))


# --- the dispatcher's claim -------------------------------------------------------------


def until_closing(conn: Connection, claimed: Sequence[Message],
                  now: datetime) -> list[Message]:
    """Called when the hours are open at `now`: each claimed marketing message without a
    consent gets the moment they close as its `send_by`, which its carrier honours
    however long its own waits (rate, window, throttling) hold it back."""
    marketing = [x for x in claimed if x.message_class is MessageClass.MARKETING]
    if not marketing:
        return list(claimed)
    agreed = consented(conn, {(x.account_id, x.recipient) for x in marketing})
    closing = cpa.closes(now)
    return [replace(x, send_by=closing)
            if x.message_class is MessageClass.MARKETING
            and (x.account_id, x.recipient) not in agreed else x
            for x in claimed]


def hold_claimed(conn: Connection, claimed: Sequence[Message], now: datetime) -> list[Message]:
    """Called when the hours are closed at `now`: the claimed marketing messages without
    a consent go back to `scheduled` at the next allowed moment (or end `expired` if
    their validity ends first), as if never claimed; the rest are returned to send."""
    marketing = [x for x in claimed if x.message_class is MessageClass.MARKETING]
    if not marketing:
        return list(claimed)
    agreed = consented(conn, {(x.account_id, x.recipient) for x in marketing})
    held = {x.id: x for x in marketing if (x.account_id, x.recipient) not in agreed}
    if not held:
        return list(claimed)
    found = cpa.hold(now)
    assert found is not None  # the caller checked that the hours are closed
    until, why = found
    late = [x for x in held.values() if x.expires_at is not None and x.expires_at <= until]
    wait = [x for x in held.values() if x.expires_at is None or x.expires_at > until]
    events: list[Event] = []
    if wait:
        for part in chunks([x.id for x in wait]):
            conn.execute(update(m).where(m.c.id.in_(part)).values(
                status=Status.SCHEDULED.value, due_at=until, error_code=why.code,
                error_text=why.text, attempts=m.c.attempts - 1, updated_at=now, **NO_LEASE))
        events += [event(x.id, now, Status.SCHEDULED, why.text) for x in wait]
    if late:
        gone = cpa.expired_before(until)
        for part in chunks([x.id for x in late]):
            conn.execute(update(m).where(m.c.id.in_(part)).values(
                status=Status.EXPIRED.value, completed_at=now, error_code=gone.code,
                error_text=gone.text, attempts=m.c.attempts - 1, updated_at=now, **NO_LEASE))
        events += [event(x.id, now, Status.EXPIRED, gone.text) for x in late]
        refund(conn, [(x.account_id, x.cost) for x in late])
    add_events(conn, events)
    return [x for x in claimed if x.id not in held]

