"""Which node works each open FTP batch (issue #16): a lease per batch in the node's name,
renewed while it lives; a batch whose lease lapsed, or that has none, is taken over by
another node. Also the duplicate check, made once cluster-wide."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    ForeignKey,
    String,
    Table,
    Text,
    and_,
    delete,
    exists,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from hub.batches import Batch, BatchState
from spool.batches import _from_row
from spool.engine import Database
from spool.tables import UtcTime, batches, metadata

batch_leases = Table(
    "batch_leases",
    metadata,
    Column("batch_id", String(26), ForeignKey("batches.id"), primary_key=True),
    Column("node", Text, nullable=False),
    Column("lease_until", UtcTime, nullable=False),
)
b, lease = batches, batch_leases
# A batch needs a node while its rows are read, then while its report file is followed.
_HELD = or_(
    b.c.state == BatchState.PROCESSING.value,
    and_(
        b.c.state.in_((BatchState.ACCEPTED.value, BatchState.FAILED.value)),
        b.c.report_final.is_(False),
    ),
)
_CONTENT_LOCK = 0x5EB7  # the first key of the advisory lock that orders duplicate checks


def receive_batch(db: Database, batch: Batch, node: str, until: datetime) -> bool:
    """Record an upload just claimed, leased to `node`, in one transaction (before the
    client's 226); False if a batch of that id exists (another node took the file)."""
    values = {
        "id": batch.id,
        "account_id": batch.account_id,
        "file_name": batch.file_name,
        "sha256": batch.sha256,
        "format": batch.format,
        "received_at": batch.received_at,
        "rows": 0,
        "accepted": 0,
        "rejected": 0,
        "state": batch.state.value,
        "report_final": False,
    }
    try:
        with db.write() as conn:
            if conn.execute(select(b.c.id).where(b.c.id == batch.id)).first() is not None:
                return False
            conn.execute(insert(b).values(values))
            conn.execute(insert(lease).values(batch_id=batch.id, node=node, lease_until=until))
    except IntegrityError:  # another node inserted it between the check and the insert
        return False
    return True


def settle_content(db: Database, batch: Batch, since: datetime | None) -> Batch | None:
    """Store the batch's content hash; if the account sent the same content since `since`
    (the earliest such batch that is neither a duplicate nor failed; None: no check),
    mark this one its duplicate and return that one. On PostgreSQL an advisory lock per
    account orders the checks, so two nodes given the same file at once cannot both
    send it."""
    skip = (BatchState.DUPLICATE.value, BatchState.FAILED.value)
    with db.write() as conn:
        if since is not None and not db.is_sqlite:  # SQLite's write lock already orders them
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:a, :b)"),
                {"a": _CONTENT_LOCK, "b": batch.account_id},
            )
        row = (
            None
            if since is None
            else conn.execute(
                select(b)
                .where(
                    b.c.account_id == batch.account_id,
                    b.c.sha256 == batch.sha256,
                    b.c.received_at >= since,
                    b.c.state.not_in(skip),
                    b.c.id != batch.id,
                )
                .order_by(b.c.received_at)
                .limit(1)
            )
            .mappings()
            .first()
        )
        earlier = None if row is None else _from_row(row)
        values: dict[str, object] = {"sha256": batch.sha256}
        if earlier is not None:  # no webhook: a duplicate was never a batch job of its own
            values.update(
                state=BatchState.DUPLICATE.value,
                duplicate_of=earlier.id,
                finished_at=batch.received_at,
            )
        conn.execute(update(b).where(b.c.id == batch.id).values(values))
    return earlier


def renew(db: Database, node: str, until: datetime) -> list[str]:
    """Extend the node's leases of batches that still need it (others' are let go);
    return the ids it holds."""
    needed = exists().where(b.c.id == lease.c.batch_id, _HELD)
    with db.write() as conn:
        conn.execute(delete(lease).where(lease.c.node == node, ~needed))
        held = conn.execute(
            update(lease)
            .where(lease.c.node == node)
            .values(lease_until=until)
            .returning(lease.c.batch_id)
        ).scalars()
        return sorted(held)


def keep(db: Database, batch_id: str, node: str, until: datetime) -> bool:
    """Extend one batch's lease; False if the node no longer holds it (taken over)."""
    with db.write() as conn:
        done = conn.execute(
            update(lease)
            .where(lease.c.batch_id == batch_id, lease.c.node == node)
            .values(lease_until=until)
        )
    return bool(done.rowcount)


def release(db: Database, node: str) -> int:
    """A clean stop: let every batch the node holds go at once, for another to take."""
    with db.write() as conn:
        return int(conn.execute(delete(lease).where(lease.c.node == node)).rowcount or 0)


def take(db: Database, node: str, now: datetime, until: datetime, own: bool = False) -> list[Batch]:
    """Lease to `node` the open batches that no live node holds: no lease (a clean stop
    let it go, or from before leases), or a lease that lapsed; with `own`, also those
    leased in this node's name (it restarted). Each is taken in its own transaction, so
    of two nodes taking at once each batch goes to one."""
    lapsed = (
        or_(lease.c.lease_until < now, lease.c.node == node) if own else (lease.c.lease_until < now)
    )
    leased = exists().where(lease.c.batch_id == b.c.id)
    due = exists().where(lease.c.batch_id == b.c.id, lapsed)
    query = select(b).where(_HELD, or_(~leased, due)).order_by(b.c.id)
    with db.read() as conn:
        candidates = [_from_row(row) for row in conn.execute(query).mappings()]
    return [batch for batch in candidates if _take_one(db, batch.id, node, until, lapsed)]


def _take_one(
    db: Database, batch_id: str, node: str, until: datetime, lapsed: ColumnElement[bool]
) -> bool:
    try:
        with db.write() as conn:
            done = conn.execute(
                update(lease)
                .where(lease.c.batch_id == batch_id, lapsed)
                .values(node=node, lease_until=until)
            )
            if done.rowcount:
                return True
            return _insert_if_free(conn, batch_id, node, until)
    except IntegrityError:  # another node inserted its lease first
        return False


def _insert_if_free(conn: Connection, batch_id: str, node: str, until: datetime) -> bool:
    if conn.execute(select(lease.c.node).where(lease.c.batch_id == batch_id)).first():
        return False  # held, and not lapsed: renewed meanwhile
    conn.execute(insert(lease).values(batch_id=batch_id, node=node, lease_until=until))
    return True


def holder(db: Database, batch_id: str) -> str | None:
    """The node holding the batch's lease, if any (for `smshub batch show` and tests)."""
    with db.read() as conn:
        return conn.execute(
            select(lease.c.node).where(lease.c.batch_id == batch_id)
        ).scalar_one_or_none()
