"""The outbox queue: claim due items of one channel under a lease, record results (sent,
failed, or pending again for a retry); expired leases simply become claimable again."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from uuid import uuid4

from sqlalchemy import Select, and_, bindparam, func, or_, select, update
from sqlalchemy.sql.dml import ReturningUpdate

from hub.model import ErrorInfo, NewOutboxItem, OutboxItem, OutboxResult, OutboxStatus
from spool import pushes, webhooks
from spool.engine import Database
from spool.tables import UtcTime, outbox

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


def target_column() -> Any:
    """Where an item goes, as `hub.outbox.target` names it: its webhook endpoint, or
    else its address (a push URL, a mailbox)."""
    return func.coalesce(o.c.endpoint_id, o.c.address)


def claim(db: Database, channel: str, limit: int, lease_seconds: float,
          now: datetime, owner: str = "", exclude: Sequence[str] = (),
          held: Collection[str] = ()) -> list[OutboxItem]:
    """Lease up to `limit` due items of `channel`, none going to a target in `exclude`
    (targets the caller already has enough deliveries in flight to), nor one whose lease
    ran out under a token in `held` (the caller is still delivering or recording it: a
    result it records late is not lost to a delivery made again)."""
    probe, lease = _claim_statements(channel in (webhooks.CHANNEL, pushes.CHANNEL),
                                     bool(exclude), bool(held), db.is_sqlite)
    params: dict[str, Any] = {"b_channel": channel, "b_now": now}
    if exclude:
        params["b_exclude"] = list(exclude)
    if held:
        params["b_held"] = list(held)
    # A read first: an idle channel polled several times a second must not take the
    # write lock (SQLite's BEGIN IMMEDIATE) each time to find nothing.
    with db.read() as conn:
        if conn.execute(probe, params).first() is None:
            return []
    # The lease token names its node, so the node can take back its own leases when it
    # starts again after a crash instead of waiting for them to run out.
    params.update(b_limit=limit, b_token=f"{owner}:{uuid4().hex}",
                  b_expires=now + timedelta(seconds=lease_seconds))
    with db.write() as conn:
        rows = conn.execute(lease, params).mappings().all()
    return sorted((item_from_row(r) for r in rows), key=lambda i: (i.due_at, i.id))


@lru_cache(maxsize=16)
def _claim_statements(ordered: bool, excluding: bool, holding: bool,
                      sqlite: bool) -> tuple[Select[Any], ReturningUpdate[Any]]:
    """The probe for due items and the claim that leases them, for one shape of claim,
    built once: an idle channel is polled all day, and building these anew each time
    (the per-message order test is a correlated subquery) cost 2 ms a poll under load.
    Parameters (b_ and a name: a bind named like a column is reserved in an UPDATE):
    b_channel, b_now, b_exclude and b_held (if the shape has them); the claim's also
    b_limit, b_token and b_expires."""
    now = bindparam("b_now", type_=UtcTime())
    expired = [o.c.status == OutboxStatus.SENDING.value, o.c.lease_expires_at < now]
    if holding:
        expired.append(o.c.lease_token.not_in(bindparam("b_held", expanding=True)))
    due = or_(and_(o.c.status == OutboxStatus.PENDING.value, o.c.due_at <= now),
              and_(*expired))
    if excluding:
        due = and_(due, target_column().not_in(bindparam("b_exclude", expanding=True)))
    if ordered:
        # One message's events reach an endpoint (a push: its kind) in order.
        due = and_(due, webhooks.owed_filter())
    where = (o.c.channel == bindparam("b_channel"), due)
    ids = select(o.c.id).where(*where).order_by(o.c.due_at).limit(bindparam("b_limit"))
    if not sqlite:
        ids = ids.with_for_update(skip_locked=True)
    lease = (
        update(o).where(o.c.id.in_(ids.scalar_subquery()))
        .values(status=OutboxStatus.SENDING.value, lease_token=bindparam("b_token"),
                lease_expires_at=bindparam("b_expires", type_=UtcTime()),
                attempts=o.c.attempts + 1, updated_at=now)
        .returning(*o.c)
    )
    return select(o.c.id).where(*where).limit(1), lease


def record(db: Database, token: str, results: Sequence[OutboxResult],
           now: datetime) -> list[str]:
    """Apply results for items still leased under `token`; return the ids applied.
    One read finds which are still held, then one statement per kind of result, so a
    batch of webhook deliveries costs a few statements, not one per item."""
    if not results:
        return []
    with db.write() as conn:
        # Locked until the results are written, so that another node's claim of an item
        # whose lease ran out skips it meanwhile (SKIP LOCKED); a claim made before this
        # lookup changed its token, and the lookup no longer finds it. Unlocked, a late
        # result could overwrite the lease of a node delivering the item again.
        held = set(conn.execute(select(o.c.id).where(
            o.c.lease_token == token, o.c.status == OutboxStatus.SENDING.value)
            .with_for_update()).scalars())
        applied = [r for r in results if r.item_id in held]
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for r in applied:
            # Bound as v_<column>: a bind named like its column is reserved by SQLAlchemy.
            values: dict[str, Any] = {"b_id": r.item_id, "v_status": r.status.value}
            if r.due_at is not None:
                values["v_due_at"] = r.due_at
            if r.error is not None:
                values["v_error_code"], values["v_error_text"] = r.error.code, r.error.text
            groups.setdefault(tuple(sorted(values)), []).append(values)
        for keys, params in groups.items():
            sets: dict[str, Any] = {k[2:]: bindparam(k) for k in keys if k != "b_id"}
            conn.execute(
                update(o).where(o.c.id == bindparam("b_id")).values(
                    **sets, lease_token=None, lease_expires_at=None, updated_at=now),
                params)
    return [r.item_id for r in applied]


def release(db: Database, owner: str, now: datetime) -> int:
    """Make the items this node held when it stopped (or died) due again at once."""
    with db.write() as conn:
        done = conn.execute(
            update(o).where(o.c.status == OutboxStatus.SENDING.value,
                            o.c.lease_token.startswith(f"{owner}:", autoescape=True))
            .values(status=OutboxStatus.PENDING.value, lease_token=None,
                    lease_expires_at=None, due_at=now, updated_at=now))
    return int(done.rowcount)


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
