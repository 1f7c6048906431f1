"""The dispatch queue: claim due messages under a lease, record what happened to them,
and the maintenance sweeps (release, lease recovery, expiry, dead letters)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import suppress
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

from sqlalchemy import (
    BigInteger,
    ColumnExpressionArgument,
    Connection,
    Integer,
    Row,
    Text,
    bindparam,
    case,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.sql.dml import ReturningUpdate

from hub import cpa
from hub.errors import TemporaryFailure
from hub.model import (
    FINAL_STATUSES,
    Claim,
    DeliveryReport,
    ErrorInfo,
    Message,
    MessageClass,
    Source,
    Status,
    Transition,
    UnknownOutcome,
)
from hub.ports import MESSAGES_CHANNEL
from spool import consents
from spool.bulk import bulk_insert, bulk_update, driver
from spool.engine import Database, notify
from spool.ledger import NO_LEASE, Event, add_events, event, refund
from spool.reports import (
    CarrierRef,
    apply_or_hold,
    check_reports,
    find_held,
    fold,
    release_held,
)
from spool.rows import (
    CHUNK,
    RAW_COLUMNS,
    FromDriver,
    chunks,
    listed,
    listed_rows,
    message_from_values,
    on_driver,
)
from spool.tables import (
    CLAIMABLE_SQL,
    QUEUED_SQL,
    SENDING_BY_ID_SQL,
    SENDING_SQL,
    UtcTime,
    from_units,
    message_parts,
    messages,
    to_micros,
)

m = messages
RECORDABLE = FINAL_STATUSES | {Status.QUEUED, Status.SUBMITTED}
EXPIRED = ErrorInfo("expired", "validity period ended before the message was sent")
TOO_OLD = ErrorInfo("too_old", "gave up retrying after the maximum age")
CANCELLED = ErrorInfo("cancelled", "cancelled by the operator")


def claim(db: Database, owner: str, limit: int, lease_seconds: float, now: datetime) -> Claim:
    token = uuid4().hex
    expires_at = now + timedelta(seconds=lease_seconds)
    if limit <= 0:
        return Claim(token, owner, expires_at, ())
    send_by: dict[str, datetime] = {}
    with db.write() as conn:
        leased, whole = _lease(conn, token, owner, expires_at, now, limit)
        marketing = [id_ for id_, _, kind in leased if kind == MessageClass.MARKETING]
        held: set[str] = set()
        if marketing:  # CPA hours: rare, and they need the whole messages
            found = _by_ids(conn, marketing)
            if not cpa.allowed(now):  # one pure check per batch; open most of the day
                kept = {x.id for x in consents.hold_claimed(conn, found, now)}
                held = {x.id for x in found} - kept
            else:
                send_by = {x.id: x.send_by for x in consents.until_closing(conn, found, now)
                           if x.send_by is not None}
        at, sending = to_micros(now), Status.SENDING.value
        add_events(conn, [(id_, at, sending, f"attempt {attempts} by {owner}")
                          for id_, attempts, _ in leased if id_ not in held])
    ids = [id_ for id_, _, _ in leased if id_ not in held]
    if not ids:  # an idle poll: nothing to read back
        return Claim(token, owner, expires_at, ())
    if whole is not None:  # made into Messages here, after the writer's turn
        convert = FromDriver()
        claimed = [message_from_values(values, convert) for values in whole
                   if values[0] not in held]
    else:
        try:
            with db.read() as conn:
                claimed = _by_ids(conn, ids, token)
        except TemporaryFailure:
            _unclaim(db, token, ids, now)
            raise
    claimed = [replace(x, send_by=send_by[x.id]) if x.id in send_by else x for x in claimed]
    return Claim(token, owner, expires_at, tuple(sorted(claimed, key=_claim_order)))


def _lease(conn: Connection, token: str, owner: str, expires_at: datetime, now: datetime,
           limit: int) -> tuple[list[tuple[str, int, str]], list[Any] | None]:
    """Lease up to `limit` due messages under `token`: (id, attempts, class) of each,
    and on SQLite their whole rows as leased (RAW_COLUMNS), else None: read them back."""
    if conn.dialect.name == "sqlite":
        # As the driver takes it: SQLAlchemy's execution and its result rows cost more
        # than the statement (a claim runs every few milliseconds under load). The rows
        # come back whole: a read transaction after the commit to fetch them again cost
        # as much CPU as a claim of 30 messages' own work, and only the fetching, not the
        # making of Messages, is done in the writer's turn.
        whole = driver(conn).execute(_CLAIM_SQLITE, {
            "token": token, "owner": owner, "lease_until": to_micros(expires_at),
            "now": to_micros(now), "limit": limit}).fetchall()
        return [(v[0], v[_ATTEMPTS], v[_CLASS]) for v in whole], whole
    # PostgreSQL: the rows stay locked until the commit; they are read after it.
    params = {"token": token, "owner": owner, "lease_until": expires_at, "now": now,
              "limit": limit}
    return [(row.id, row.attempts, row.message_class)
            for row in conn.execute(_CLAIM_POSTGRESQL, params)], None


_ATTEMPTS, _CLASS = RAW_COLUMNS.index("attempts"), RAW_COLUMNS.index("message_class")


def _unclaim(db: Database, token: str, ids: list[str], now: datetime) -> None:
    """Put back, as never claimed, messages whose claim committed but could not be read
    back (PostgreSQL; SQLite's claim reads nothing after its commit): nothing of theirs
    reached a carrier, so lease recovery must not take their outcome for unknown
    (failed, under `unknown_outcome = "fail"`). Best effort: if the spool cannot take
    this write either, recovery takes them when the lease runs out."""
    with suppress(TemporaryFailure), db.write() as conn:
        _put_back(conn, list(_leased(conn, token, ids)), now, "claim not read back; due again")


def _by_ids(conn: Connection, ids: Sequence[str], token: str | None = None) -> list[Message]:
    """The messages of `ids` (those still leased under `token`, if given), read as the
    driver gives them: on PostgreSQL every message a dispatcher sends is read here."""
    convert = FromDriver()
    if token is None and conn.dialect.name == "sqlite":
        return [message_from_values(values, convert)
                for values in listed_rows(conn, _BY_ID_SQLITE, ids=ids)]
    found: list[Message] = []
    query, params = (_BY_ID, {}) if token is None else (_LEASED_BY_ID, {"token": token})
    for part in chunks(ids):
        rows = conn.execute(query, {**params, "ids": list(part)}).all()
        found += [message_from_values(row, convert) for row in rows]
    return found


# RAW_COLUMNS and the clauses after it are our own constants, never input.
_RAW = f"SELECT {', '.join(RAW_COLUMNS)} FROM messages WHERE"  # noqa: S608
_BY_ID = text(f"{_RAW} id IN :ids").bindparams(bindparam("ids", expanding=True))
_LEASED_BY_ID = text(f"{_RAW} lease_token = :token AND id IN :ids").bindparams(
    bindparam("ids", expanding=True))
# The first for SQLite's driver, the ids as one JSON text (spool.rows.listed on why).
_BY_ID_SQLITE = f"{_RAW} id IN (SELECT value FROM json_each(?))"  # noqa: S608


# Ids to claim, in claim order, written out so that the planner uses the claim index;
# PostgreSQL skips the rows another claimer has locked. CLAIMABLE_SQL is our own
# constant, never input.
_DUE_POSTGRESQL = (
    "SELECT id FROM messages"  # noqa: S608
    f" WHERE {CLAIMABLE_SQL} AND due_at <= :now"
    " ORDER BY priority DESC, due_at, id LIMIT :limit FOR UPDATE SKIP LOCKED"
)


def _claim_statement(due_sql: str) -> ReturningUpdate[Any]:
    due = (text(due_sql)
           .bindparams(bindparam("now", type_=UtcTime()), bindparam("limit", type_=Integer))
           .columns(m.c.id))
    return (
        update(m)
        .where(m.c.id.in_(due))
        .values(
            status=Status.SENDING.value,
            lease_token=bindparam("token", type_=Text()),
            lease_owner=bindparam("owner", type_=Text()),
            lease_expires_at=bindparam("lease_until", type_=UtcTime()),
            attempts=m.c.attempts + 1,
            updated_at=bindparam("now", type_=UtcTime()),
            # A marketing message held for CPA hours is due now: its reason no longer holds.
            error_code=case((m.c.error_code == cpa.HELD, None), else_=m.c.error_code),
            error_text=case((m.c.error_code == cpa.HELD, None), else_=m.c.error_text),
        )
        # Only what the transaction itself needs: the lease is the claim, and the rows
        # are read whole after the commit, outside the writer's turn that intake's
        # commits wait for (making Messages of them took half of a claim's hold).
        .returning(m.c.id, m.c.attempts, m.c.message_class)
    )


# Built once, as the outbox's claims are: made anew at every claim (idle polls included),
# the statement and its cache key cost more CPU than running it, over a millisecond.
_CLAIM_POSTGRESQL = _claim_statement(_DUE_POSTGRESQL)
# The same claim for SQLite's driver (times in microseconds, as UtcTime stores them), its
# due messages read through the claim index: without ANALYZE statistics SQLite would
# rather use the status index and sort the whole backlog.
_CLAIM_SQLITE = (  # our own constants, never input
    "UPDATE messages SET status = 'sending', lease_token = :token, lease_owner = :owner,"  # noqa: S608
    " lease_expires_at = :lease_until, attempts = attempts + 1, updated_at = :now,"
    f" error_code = CASE WHEN error_code = '{cpa.HELD}' THEN NULL ELSE error_code END,"
    f" error_text = CASE WHEN error_code = '{cpa.HELD}' THEN NULL ELSE error_text END"
    " WHERE id IN (SELECT id FROM messages INDEXED BY ix_messages_claim"
    f" WHERE {CLAIMABLE_SQL} AND due_at <= :now"
    " ORDER BY priority DESC, due_at, id LIMIT :limit)"
    f" RETURNING {', '.join(RAW_COLUMNS)}"
)


def hold_unsent(db: Database, token: str, unsent: Sequence[Message], now: datetime) -> int:
    """Claimed marketing messages their carrier did not send because the hours closed
    first (hub.cpa.too_late), among those still leased under `token`: held as by a claim
    after closing (scheduled at the next opening, or expired when their validity ends
    first), the attempt not counted; one whose number has a consent by now goes back to
    the queue, due at once. Returns how many were still leased."""
    if not unsent:
        return 0
    with db.write() as conn:
        leased = _leased(conn, token, [x.id for x in unsent])
        mine = [x for x in unsent if x.id in leased]
        rest = mine if cpa.allowed(now) else consents.hold_claimed(conn, mine, now)
        # A consent, or a clock that says the hours are open again.
        _put_back(conn, [x.id for x in rest], now,
                  "not sent before direct-marketing hours closed; due again")
    return len(mine)


# The attempts of a message put back that never reached a carrier: this one does not count.
_NOT_COUNTED = case((m.c.attempts > 0, m.c.attempts - 1), else_=0)


def _claim_order(message: Message) -> tuple[int, datetime, str]:
    return (-message.priority, message.due_at, message.id)


def record(
    db: Database, token: str, transitions: Sequence[Transition], now: datetime
) -> list[str]:
    todo = _checked(transitions)
    if not todo:
        return []
    with db.write() as conn:
        return _record_in(conn, token, todo, now)


def settle(db: Database, records: Sequence[tuple[str, Sequence[Transition]]],
           reports: Sequence[DeliveryReport], now: datetime) -> list[str]:
    """`record` for each (lease token, transitions), then `apply_reports`: on SQLite in
    one transaction, since its one writer at a time and its fsync per commit are what a
    dispatcher's throughput meets; on PostgreSQL in two, so that a record and a report
    of two nodes never lock each other's rows in opposite orders. A report for a message
    recorded here as submitted is folded into its record (one row update, not two, and
    no lookup by reference): an SMSC often answers a submit_sm and sends its receipt in
    the same breath. Returns the ids of the transitions applied."""
    todos = [(token, todo) for token, transitions in records
             if (todo := _checked(transitions))]
    check_reports(reports)
    together = db.is_sqlite
    applied: list[str] = []
    rest = reports
    if todos or (reports and together):
        with db.write() as conn:
            owed = _by_ref(reports)
            for token, todo in todos:
                applied += _record_in(conn, token, todo, now, owed)
            rest = [r for r in reports if (r.carrier, r.carrier_message_id) in owed]
            if rest and together:
                apply_or_hold(conn, rest, now)
    if rest and not together:
        with db.write() as conn:
            apply_or_hold(conn, rest, now)
    return applied


def _by_ref(reports: Sequence[DeliveryReport]) -> dict[CarrierRef, list[DeliveryReport]]:
    owed: dict[CarrierRef, list[DeliveryReport]] = {}
    for report in reports:
        owed.setdefault((report.carrier, report.carrier_message_id), []).append(report)
    return owed


def _record_in(conn: Connection, token: str, todo: dict[str, Transition],
               now: datetime, owed: dict[CarrierRef, list[DeliveryReport]] | None = None,
               ) -> list[str]:
    """Record `todo` in the caller's transaction; return the ids applied. The reports in
    `owed` for a single message recorded as submitted are folded into its record and
    taken out of `owed`, unless reports held for it came earlier: those apply first."""
    leased = _leased(conn, token, list(todo))
    applied = [t for t in todo.values() if t.message_id in leased]
    if not applied:
        return []
    micros = to_micros(now)
    # Reports that overtook this record, applied once it is written, in this transaction.
    held = find_held(conn, [
        (t.carrier, ref) for t in applied
        if t.status is Status.SUBMITTED and t.carrier and t.carrier_message_id
        for ref in (t.part_ids or (t.carrier_message_id,))
    ])
    held_refs = {(row.carrier, row.carrier_message_id) for row in held}
    rows: list[dict[str, Any]] = []
    events: list[Event] = []
    for t in applied:
        row = _record_values(t, micros)
        events.append(event(t.message_id, now, t.status, _detail(t)))
        ref = (t.carrier, t.carrier_message_id)
        if (owed and t.status is Status.SUBMITTED and not t.part_ids and ref in owed
                and ref not in held_refs):
            more, final = fold(t.message_id, owed.pop(ref), now)
            events += more
            if final is not None:
                row.update(status=final.status.value, completed_at=micros,
                           error_code=final.error.code if final.error else None,
                           error_text=final.error.text if final.error else None)
        rows.append(row)
    bulk_update(conn, m, rows, keep=_KEEP_UNLESS_GIVEN, constants=NO_LEASE)
    add_events(conn, events)
    refunds = [leased[t.message_id] for t in applied if t.refund]
    refund(conn, [(account_id, from_units(units)) for account_id, units in refunds])
    bulk_insert(conn, message_parts, _PART_COLUMNS, [
        (t.message_id, number, t.carrier, part_id)
        for t in applied if t.part_ids and t.carrier
        for number, part_id in enumerate(t.part_ids, 1)
    ])
    release_held(conn, held, now)
    return [t.message_id for t in applied]


_PART_COLUMNS = ("message_id", "part", "carrier", "carrier_message_id")


def _checked(transitions: Sequence[Transition]) -> dict[str, Transition]:
    """Transitions by message id (the first one wins), refusing ones that make no sense."""
    todo: dict[str, Transition] = {}
    for t in transitions:
        if t.status not in RECORDABLE:
            raise ValueError(f"{t.message_id}: cannot record a transition to {t.status}")
        if t.status is Status.QUEUED and t.due_at is None:
            raise ValueError(f"{t.message_id}: a retry (queued) needs due_at")
        todo.setdefault(t.message_id, t)
    return todo


def _leased(conn: Connection, token: str, ids: list[str]) -> dict[str, tuple[int, int]]:
    """(account id, cost in units) of the given messages still leased under `token`,
    locked. Units as stored: only a refund (rare) needs the cost as credit."""
    if conn.dialect.name == "sqlite":  # to the driver, as the claim itself
        return {id_: (account_id, units)
                for id_, account_id, units in listed_rows(conn, LEASED_SQLITE, token, ids=ids)}
    found: dict[str, tuple[int, int]] = {}
    for part in chunks(ids):
        # Fetched whole: iterating a Result fetches row by row, twice the time for 80.
        rows = conn.execute(LEASED, {"token": token, "ids": list(part)}).all()
        found.update({row.id: (row.account_id, row.units) for row in rows})
    return found


# Which of `ids` are still leased under `token`, looked up by id (SENDING_BY_ID_SQL).
# Built once: making a Core statement anew for every record cost more than running it.
LEASED = (
    select(m.c.id, m.c.account_id, type_coerce(m.c.cost, BigInteger).label("units"))
    .where(m.c.lease_token == bindparam("token"), text(SENDING_BY_ID_SQL), listed(m.c.id))
    .with_for_update()
)
LEASED_SQLITE = on_driver(LEASED)


# Columns a transition leaves as they are unless it gives a value.
_KEEP_UNLESS_GIVEN = frozenset({"carrier", "carrier_message_id", "error_code", "error_text",
                                "submitted_at", "completed_at", "due_at"})


def _record_values(t: Transition, now: int) -> dict[str, Any]:
    """One row for bulk_update, in driver form (times as microseconds)."""
    return {
        "id": t.message_id,
        "status": t.status.value,
        "carrier": t.carrier,
        "carrier_message_id": t.carrier_message_id,
        "error_code": t.error.code if t.error else None,
        "error_text": t.error.text if t.error else None,
        "submitted_at": now if t.status is Status.SUBMITTED else None,
        "completed_at": now if t.status.final else None,
        "due_at": to_micros(t.due_at) if t.status is Status.QUEUED and t.due_at else None,
        "updated_at": now,
    }


def _detail(t: Transition) -> str:
    if t.detail or t.error is None:
        return t.detail
    return f"{t.error.code}: {t.error.text}"


# --- sweeps -----------------------------------------------------------------------

AnyRow = Row[*tuple[Any, ...]]
Apply = Callable[[Connection, Sequence[AnyRow]], None]


Where = Sequence[ColumnExpressionArgument[bool]]


def _sweep(db: Database, where: Where, apply: Apply, skip_locked: bool = True) -> int:
    """Run `apply` over matching rows, a chunk per transaction so writers can interleave."""
    query = (
        select(m.c.id, m.c.account_id, m.c.cost, m.c.lease_owner)
        .where(*where)
        .limit(CHUNK)
        .with_for_update(skip_locked=skip_locked)
    )
    total = 0
    while True:
        with db.write() as conn:
            rows = conn.execute(query).all()
            if rows:
                apply(conn, rows)
        total += len(rows)
        if len(rows) < CHUNK:
            return total


def _ids(rows: Sequence[AnyRow]) -> list[str]:
    return [row.id for row in rows]


def release(db: Database, owner: str, now: datetime, *, after_crash: bool = False,
            unknown: UnknownOutcome = UnknownOutcome.RESEND) -> int:
    """Put every message leased by `owner` back in the queue. At a clean stop nothing of
    theirs reached a carrier (the attempt does not count); `after_crash` (a node taking
    back at its start what it held when it died) their outcome is unknown: `unknown`."""
    def apply(conn: Connection, rows: Sequence[AnyRow]) -> None:
        if after_crash:
            _unknown(conn, rows, now, f"{owner} stopped before its carrier's answer was "
                                      "recorded", unknown)
            return
        _put_back(conn, _ids(rows), now, f"released by {owner}")

    # Not skip_locked: wait for this owner's own in-flight record() rather than miss rows.
    return _sweep(db, [text(SENDING_SQL), m.c.lease_owner == owner], apply, skip_locked=False)


def recover_expired_leases(db: Database, now: datetime, held: Collection[str] = (),
                           unknown: UnknownOutcome = UnknownOutcome.RESEND) -> int:
    """Leases that ran out by the wall clock, except those in `held`: their dispatcher is
    still at work (a clock stepped forward makes fresh leases look expired). Their node
    died or hung while sending them: their outcome is unknown (`unknown`)."""

    def apply(conn: Connection, rows: Sequence[AnyRow]) -> None:
        by_owner: dict[str, list[AnyRow]] = {}
        for row in rows:
            by_owner.setdefault(row.lease_owner, []).append(row)
        for owner, mine in by_owner.items():
            _unknown(conn, mine, now, f"lease of {owner} expired", unknown)

    where: list[Any] = [text(SENDING_SQL), m.c.lease_expires_at < now]
    if held:
        where.append(m.c.lease_token.not_in(list(held)))
    return _sweep(db, where, apply)


OUTCOME_UNKNOWN = "outcome_unknown"


def _unknown(conn: Connection, rows: Sequence[AnyRow], now: datetime, why: str,
             unknown: UnknownOutcome) -> None:
    """Messages taken back from a dispatcher that died while they were with it (P7):
    the carrier may have taken them, no answer was recorded. RESEND: due again at once,
    the attempt counted (a handset may get it twice); FAIL: ended failed, charged (the
    carrier may have delivered it), never sent again. Either way the event says so."""
    if unknown is UnknownOutcome.FAIL:
        error = ErrorInfo(OUTCOME_UNKNOWN, f"outcome unknown: {why}; the carrier may have "
                                           "taken it, not sent again (unknown_outcome = fail)")
        _finisher(Status.FAILED, error, now, refund_credit=False)(conn, rows)
        return
    _requeue(conn, _ids(rows), now)
    add_events(conn, [event(r.id, now, Status.QUEUED, f"outcome unknown: {why}; sent again")
                      for r in rows])


def _put_back(conn: Connection, ids: Sequence[str], now: datetime, why: str) -> None:
    """Claimed messages that never reached a carrier: due again at once, the attempt not
    counted, an event saying `why`."""
    for part in chunks(ids):
        _requeue(conn, part, now, attempts=_NOT_COUNTED)
    add_events(conn, [event(x, now, Status.QUEUED, why) for x in ids])


def _requeue(conn: Connection, ids: Sequence[str], now: datetime, **extra: Any) -> None:
    values = {"status": Status.QUEUED.value, "due_at": now, "updated_at": now, **NO_LEASE}
    conn.execute(update(m).where(m.c.id.in_(ids)).values(**values, **extra))
    notify(conn, MESSAGES_CHANNEL)  # due now: another node's idle dispatcher takes them


def expire_due(db: Database, now: datetime) -> int:
    where: Where = [text(CLAIMABLE_SQL), m.c.expires_at.is_not(None), m.c.expires_at < now]
    # Marketing messages held for CPA hours say so: their expiry is the rule's doing.
    held = _sweep(db, [*where, m.c.error_code == cpa.HELD],
                  _finisher(Status.EXPIRED, cpa.HELD_EXPIRED, now))
    return held + _sweep(db, where, _finisher(Status.EXPIRED, EXPIRED, now))


def dead_letter(db: Database, older_than: datetime, now: datetime) -> int:
    where: Where = [text(QUEUED_SQL), m.c.attempts > 0, m.c.accepted_at < older_than]
    return _sweep(db, where, _finisher(Status.FAILED, TOO_OLD, now))


def cancel(db: Database, ids: Sequence[str], account_id: int | None, now: datetime) -> int:
    """Unsent messages (accepted, scheduled, queued) among `ids`, or all of `account_id`'s,
    become cancelled with their credit refunded. One being sent right now is left alone:
    its dispatcher holds the lease."""
    which = m.c.id.in_(ids) if account_id is None else m.c.account_id == account_id
    return _sweep(db, [text(CLAIMABLE_SQL), which], _finisher(Status.CANCELLED, CANCELLED, now))


def cancel_unsent_in(conn: Connection, account_id: int, error: ErrorInfo,
                     now: datetime) -> tuple[int, Decimal]:
    """In the caller's transaction: every unsent message of the account cancelled with its
    credit refunded, for an action that must see them all gone at once (account delete).
    Returns how many, and the credit refunded."""
    rows = conn.execute(select(m.c.id, m.c.account_id, m.c.cost).where(
        text(CLAIMABLE_SQL), m.c.account_id == account_id).with_for_update()).all()
    finish = _finisher(Status.CANCELLED, error, now)
    for part in chunks(rows):
        finish(conn, part)
    return len(rows), sum((r.cost for r in rows), Decimal(0))


def cancel_unsent_to(conn: Connection, recipient: str, account_id: int | None,
                     marketing_only: bool, error: ErrorInfo, now: datetime) -> int:
    """In the caller's transaction: the unsent messages to `recipient` (one account's,
    or every account's for None; only marketing ones if `marketing_only`) cancelled with
    their credit refunded, when the number goes on an opt-out list. An account's list
    spares the hub's own messages (an opt-out's confirmation). Returns how many."""
    query = select(m.c.id, m.c.account_id, m.c.cost).where(
        m.c.recipient == recipient, text(CLAIMABLE_SQL))
    if account_id is not None:
        query = query.where(m.c.account_id == account_id, m.c.source != Source.HUB.value)
    if marketing_only:
        query = query.where(m.c.message_class == MessageClass.MARKETING.value)
    rows = conn.execute(query.with_for_update()).all()
    finish = _finisher(Status.CANCELLED, error, now)
    for part in chunks(rows):
        finish(conn, part)
    return len(rows)


def _finisher(status: Status, error: ErrorInfo, now: datetime,
              refund_credit: bool = True) -> Apply:
    """Apply: end messages with `status` and `error`, refunding their credit unless
    `refund_credit` is false (they may have reached a carrier)."""
    values = {
        "status": status.value,
        "completed_at": now,
        "updated_at": now,
        "error_code": error.code,
        "error_text": error.text,
        **NO_LEASE,
    }

    def apply(conn: Connection, rows: Sequence[AnyRow]) -> None:
        conn.execute(update(m).where(m.c.id.in_(_ids(rows))).values(**values))
        add_events(conn, [event(r.id, now, status, error.text) for r in rows])
        if refund_credit:
            refund(conn, [(r.account_id, r.cost) for r in rows])

    return apply
