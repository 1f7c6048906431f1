"""Batch storage: the `batches` table, and the reads that follow a batch's messages."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from hub.batches import Batch, BatchState
from hub.events import EventType, batch_data
from hub.model import Accepted, Message, Status
from spool import webhooks
from spool.engine import Database
from spool.rows import message_from_row
from spool.tables import batches, messages

b = batches
_OPEN = (BatchState.PROCESSING.value, BatchState.ACCEPTED.value)
# States whose messages are being sent: their report files are followed until final.
_REPORTED = (BatchState.ACCEPTED.value, BatchState.FAILED.value)


def _from_row(row: Mapping[Any, Any]) -> Batch:
    return Batch(
        id=row["id"], account_id=row["account_id"], file_name=row["file_name"],
        sha256=row["sha256"], format=row["format"], received_at=row["received_at"],
        state=BatchState(row["state"]), rows=row["rows"], accepted=row["accepted"],
        rejected=row["rejected"], duplicate_of=row["duplicate_of"],
        finished_at=row["finished_at"], report_final=row["report_final"],
    )


def create_batch(db: Database, batch: Batch) -> None:
    values = {
        "id": batch.id, "account_id": batch.account_id, "file_name": batch.file_name,
        "sha256": batch.sha256, "format": batch.format, "received_at": batch.received_at,
        "rows": batch.rows, "accepted": batch.accepted, "rejected": batch.rejected,
        "state": batch.state.value, "duplicate_of": batch.duplicate_of,
        "finished_at": batch.finished_at, "report_final": batch.report_final,
    }
    with db.write() as conn:
        conn.execute(insert(b).values(values))


def update_batch(db: Database, batch: Batch) -> None:
    """Store a batch's counters, state, format, finish time and report mark."""
    values = {
        "format": batch.format, "rows": batch.rows, "accepted": batch.accepted,
        "rejected": batch.rejected, "state": batch.state.value,
        "finished_at": batch.finished_at, "report_final": batch.report_final,
    }
    with db.write() as conn:
        before = conn.execute(select(b.c.state).where(b.c.id == batch.id)).scalar()
        conn.execute(update(b).where(b.c.id == batch.id).values(values))
        if before == BatchState.PROCESSING.value and batch.state is not BatchState.PROCESSING:
            # Every row is read and its result file written: the batch job may go on.
            webhooks.emit(conn, batch.account_id, EventType.BATCH_COMPLETED,
                          batch.finished_at or batch.received_at, batch_data(batch),
                          subject=batch.id)


def get_batch(db: Database, batch_id: str) -> Batch | None:
    with db.read() as conn:
        row = conn.execute(select(b).where(b.c.id == batch_id)).mappings().first()
    return None if row is None else _from_row(row)


def list_batches(db: Database, account_id: int | None, limit: int) -> list[Batch]:
    query = select(b).order_by(b.c.received_at.desc(), b.c.id.desc()).limit(limit)
    if account_id is not None:
        query = query.where(b.c.account_id == account_id)
    with db.read() as conn:
        return [_from_row(row) for row in conn.execute(query).mappings()]


def open_batches(db: Database) -> list[Batch]:
    query = select(b).where(b.c.state.in_(_OPEN)).order_by(b.c.id)
    with db.read() as conn:
        return [_from_row(row) for row in conn.execute(query).mappings()]


def reporting_batches(db: Database) -> list[Batch]:
    """Accepted and failed batches whose report file is not final yet."""
    query = (select(b).where(b.c.state.in_(_REPORTED), b.c.report_final.is_(False))
             .order_by(b.c.id))
    with db.read() as conn:
        return [_from_row(row) for row in conn.execute(query).mappings()]


def find_batch_by_content(
    db: Database, account_id: int, sha256: str, since: datetime
) -> Batch | None:
    """The earliest non-duplicate batch of this account with this content since `since`;
    a failed one does not count, so the same file can be sent again after a failure."""
    skip = (BatchState.DUPLICATE.value, BatchState.FAILED.value)
    query = (
        select(b)
        .where(b.c.account_id == account_id, b.c.sha256 == sha256,
               b.c.received_at >= since, b.c.state.not_in(skip))
        .order_by(b.c.received_at)
        .limit(1)
    )
    with db.read() as conn:
        row = conn.execute(query).mappings().first()
    return None if row is None else _from_row(row)


def batch_status_counts(db: Database, batch_id: str) -> dict[Status, int]:
    query = (
        select(messages.c.status, func.count())
        .where(messages.c.batch_id == batch_id)
        .group_by(messages.c.status)
    )
    with db.read() as conn:
        return {Status(status): n for status, n in conn.execute(query)}


def batch_outcomes(db: Database, batch_id: str, after_line: int) -> dict[int, Accepted]:
    """What intake answered for the batch's rows after `after_line` that the spool holds,
    by line: the rows a resumed batch must not submit again."""
    m = messages.c
    query = select(m.batch_line, m.id, m.status, m.segments, m.cost, m.recipient).where(
        m.batch_id == batch_id, m.batch_line > after_line)
    with db.read() as conn:
        return {line: Accepted(mid, Status(status), segments, cost, recipient=recipient)
                for line, mid, status, segments, cost, recipient in conn.execute(query)}


def batch_messages(db: Database, batch_id: str, after_id: str, limit: int) -> list[Message]:
    """One page of a batch's messages in id order, after `after_id` ("" for the first)."""
    query = (
        select(messages)
        .where(messages.c.batch_id == batch_id, messages.c.id > after_id)
        .order_by(messages.c.id)
        .limit(limit)
    )
    with db.read() as conn:
        return [message_from_row(row) for row in conn.execute(query).mappings()]
