"""Delivery reports still owed: the messages carriers took (status submitted) read a page
at a time, and the receipt timeout that ends those that waited too long for one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    Integer,
    Text,
    TextClause,
    bindparam,
    select,
    text,
    update,
)

from hub.model import ErrorInfo, Message, Status
from hub.ports import ReportDeadline
from spool.engine import Database
from spool.ledger import NO_LEASE, add_events, event
from spool.rows import CHUNK, message_from_row
from spool.tables import UtcTime, messages

m = messages
# Literal, as the other status conditions: the status index finds the submitted rows,
# which are only the messages in flight, never the history of final ones.
SUBMITTED_SQL = "status = 'submitted'"
NO_REPORT = "no_delivery_report"

# Past the deadline (see ReportDeadline); a row with no submitted_at (none is written so)
# counts from its last update rather than waiting for ever.
_SINCE_SUBMISSION = "COALESCE(submitted_at, updated_at) <= :submitted_by"
_OVERDUE = {
    False: f" AND {_SINCE_SUBMISSION}",
    True: (" AND ((expires_at IS NOT NULL AND expires_at <= :expired_by)"
           f" OR (expires_at IS NULL AND {_SINCE_SUBMISSION}))"),
}
_COLUMNS = ", ".join(c.name for c in m.c)  # our own column names, never input


def carriers(db: Database) -> list[str]:
    query = (select(m.c.carrier).where(text(SUBMITTED_SQL), m.c.carrier.is_not(None))
             .distinct().order_by(m.c.carrier))
    with db.read() as conn:
        return list(conn.scalars(query))


def awaiting(db: Database, carrier: str, after_id: str, limit: int,
             deadline: ReportDeadline | None = None) -> list[Message]:
    """One page of `carrier`'s submitted messages in id order after `after_id` (only
    those past `deadline` if given)."""
    # SQLite with ANALYZE statistics would rather walk the primary key over the whole
    # table, in id order, than sort the few submitted rows: hence INDEXED BY.
    hint = " INDEXED BY ix_messages_status" if db.is_sqlite else ""
    sql = (f"SELECT {_COLUMNS} FROM messages{hint} WHERE {SUBMITTED_SQL}"  # noqa: S608
           f" AND carrier = :carrier AND id > :after{_condition(deadline)}"
           " ORDER BY id LIMIT :limit")
    query = _bound(text(sql), carrier, deadline).bindparams(
        bindparam("after", after_id, Text), bindparam("limit", limit, Integer),
    ).columns(*m.c)
    with db.read() as conn:
        return [message_from_row(row) for row in conn.execute(query).mappings()]


def _condition(deadline: ReportDeadline | None) -> str:
    return "" if deadline is None else _OVERDUE[deadline.expired_by is not None]


def _bound(query: TextClause, carrier: str, deadline: ReportDeadline | None) -> TextClause:
    params: list[BindParameter[Any]] = [bindparam("carrier", carrier, Text)]
    if deadline is not None:
        params.append(bindparam("submitted_by", deadline.submitted_by, UtcTime()))
        if deadline.expired_by is not None:
            params.append(bindparam("expired_by", deadline.expired_by, UtcTime()))
    return query.bindparams(*params)


def time_out(db: Database, deadline: ReportDeadline, now: datetime) -> int:
    """Fail `deadline.carrier`'s overdue submitted messages as no_delivery_report, a
    chunk per transaction. The credit is kept (it reached the carrier). A report the
    dispatcher applies meanwhile wins if it commits first: rows it holds are skipped
    (PostgreSQL) or already final (SQLite writes one at a time); a report arriving after
    finds a final message and is ignored."""
    error = ErrorInfo(NO_REPORT, f"no delivery report from {deadline.carrier} in time")
    values = {"status": Status.FAILED.value, "completed_at": now, "updated_at": now,
              "error_code": error.code, "error_text": error.text, **NO_LEASE}
    lock = "" if db.is_sqlite else " FOR UPDATE SKIP LOCKED"
    sql = (f"SELECT id FROM messages WHERE {SUBMITTED_SQL} AND carrier = :carrier"  # noqa: S608
           f"{_condition(deadline)} LIMIT {CHUNK}{lock}")
    query = _bound(text(sql), deadline.carrier, deadline).columns(m.c.id)
    total = 0
    while True:
        with db.write() as conn:
            ids = list(conn.scalars(query))
            if ids:
                conn.execute(update(m).where(m.c.id.in_(ids), text(SUBMITTED_SQL))
                             .values(**values))
                add_events(conn, [event(i, now, Status.FAILED, error.text) for i in ids])
        total += len(ids)
        if len(ids) < CHUNK:
            return total
