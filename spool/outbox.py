"""The outbox queue: claim due items of one channel under a lease, record results (sent,
failed, or pending again for a retry); expired leases simply become claimable again."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import and_, or_, select, update

from hub.model import ErrorInfo, NewOutboxItem, OutboxItem, OutboxResult, OutboxStatus
from spool.engine import Database
from spool.tables import outbox

o = outbox


def outbox_values(item: NewOutboxItem, now: datetime) -> dict[str, Any]:
    """The row of a newly queued outbox item: pending and due at once."""
    return {
        "id": item.id, "channel": item.channel, "account_id": item.account_id,
        "address": item.address, "inbound_id": item.inbound_id, "message_id": item.message_id,
        "status": OutboxStatus.PENDING.value, "attempts": 0, "created_at": now, "due_at": now,
        "updated_at": now, "endpoint_id": item.endpoint_id, "event_type": item.event_type,
        "payload": item.payload,
    }


def claim(db: Database, channel: str, limit: int, lease_seconds: float,
          now: datetime) -> list[OutboxItem]:
    token = uuid4().hex
    due = or_(
        and_(o.c.status == OutboxStatus.PENDING.value, o.c.due_at <= now),
        and_(o.c.status == OutboxStatus.SENDING.value, o.c.lease_expires_at < now),
    )
    ids = select(o.c.id).where(o.c.channel == channel, due).order_by(o.c.due_at).limit(limit)
    if not db.is_sqlite:
        ids = ids.with_for_update(skip_locked=True)
    stmt = (
        update(o).where(o.c.id.in_(ids.scalar_subquery()))
        .values(status=OutboxStatus.SENDING.value, lease_token=token,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=o.c.attempts + 1, updated_at=now)
        .returning(*o.c)
    )
    with db.write() as conn:
        rows = conn.execute(stmt).mappings().all()
    return sorted((item_from_row(r) for r in rows), key=lambda i: (i.due_at, i.id))


def record(db: Database, token: str, results: Sequence[OutboxResult],
           now: datetime) -> list[str]:
    """Apply results for items still leased under `token`; return the ids applied."""
    applied: list[str] = []
    with db.write() as conn:
        for result in results:
            values: dict[str, Any] = {
                "status": result.status.value, "lease_token": None, "lease_expires_at": None,
                "updated_at": now,
            }
            if result.due_at is not None:
                values["due_at"] = result.due_at
            if result.error is not None:
                values["error_code"], values["error_text"] = result.error.code, result.error.text
            done = conn.execute(
                update(o).where(o.c.id == result.item_id, o.c.lease_token == token,
                                o.c.status == OutboxStatus.SENDING.value).values(**values)
            )
            if done.rowcount:
                applied.append(result.item_id)
    return applied


def get(db: Database, item_id: str) -> OutboxItem | None:
    with db.read() as conn:
        row = conn.execute(select(o).where(o.c.id == item_id)).mappings().first()
    return None if row is None else item_from_row(row)


def item_from_row(row: Mapping[Any, Any]) -> OutboxItem:
    code, text = row["error_code"], row["error_text"]
    return OutboxItem(
        id=row["id"], channel=row["channel"], account_id=row["account_id"],
        address=row["address"], status=OutboxStatus(row["status"]),
        attempts=row["attempts"], created_at=row["created_at"], due_at=row["due_at"],
        inbound_id=row["inbound_id"], message_id=row["message_id"],
        error=None if code is None else ErrorInfo(code, text or ""),
        lease_token=row["lease_token"], endpoint_id=row["endpoint_id"],
        event_type=row["event_type"], payload=row["payload"],
    )
