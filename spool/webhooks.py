"""Webhook endpoints and the events owed to them: endpoints made, listed, rotated,
disabled and removed; and the fan-out that turns a change (a message's new status, an
inbound message, an opt-out, a finished batch) into one outbox item per subscribed
endpoint, inside the transaction that makes the change, so no event is lost or invented."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, text, update

from hub.events import STATUS_EVENTS, EventType, envelope, message_data
from hub.ids import new_id
from hub.model import OutboxStatus, WebhookEndpoint
from spool.engine import Database
from spool.rows import STATUSES
from spool.tables import OUTBOX_OWED_SQL, from_micros, messages, outbox, webhook_endpoints

w = webhook_endpoints
CHANNEL = "webhook"


# --- endpoints ----------------------------------------------------------------------


def create(db: Database, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    with db.write() as conn:
        conn.execute(insert(w).values(_row(endpoint)))
    return endpoint


def _row(e: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": e.id, "account_id": e.account_id, "url": e.url,
        "events": "\n".join(sorted(e.events)), "secret": e.secret,
        "previous_secret": e.previous_secret, "previous_until": e.previous_until,
        "enabled": e.enabled, "disabled_reason": e.disabled_reason, "kind": e.kind,
        "description": e.description, "created_at": e.created_at, "updated_at": e.created_at,
    }


def _endpoint(row: Mapping[Any, Any]) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row["id"], account_id=row["account_id"], url=row["url"],
        events=frozenset(row["events"].split("\n")), secret=row["secret"],
        created_at=row["created_at"], enabled=row["enabled"],
        disabled_reason=row["disabled_reason"], previous_secret=row["previous_secret"],
        previous_until=row["previous_until"], kind=row["kind"],
        description=row["description"],
    )


def get(db: Database, endpoint_id: str) -> WebhookEndpoint | None:
    with db.read() as conn:
        row = conn.execute(select(w).where(w.c.id == endpoint_id)).mappings().first()
    return None if row is None else _endpoint(row)


def list_for(db: Database, account_id: int | None) -> list[WebhookEndpoint]:
    """One account's endpoints, or every account's (None), oldest first."""
    query = select(w).order_by(w.c.created_at, w.c.id)
    if account_id is not None:
        query = query.where(w.c.account_id == account_id)
    with db.read() as conn:
        return [_endpoint(r) for r in conn.execute(query).mappings()]


def remove(db: Database, endpoint_id: str, now: datetime) -> bool:
    """Delete an endpoint; what it was still owed is given up (failed, 'endpoint removed'),
    so the outbox never delivers to a URL its owner took away."""
    with db.write() as conn:
        _give_up(conn, [endpoint_id], "endpoint_removed", "the endpoint was removed", now,
                 in_flight=True)
        return bool(conn.execute(delete(w).where(w.c.id == endpoint_id)).rowcount)


def _give_up(conn: Connection, endpoint_ids: Sequence[str], code: str, reason: str,
             now: datetime, in_flight: bool = False) -> None:
    """Fail what endpoints are still owed (with what is being sent now, `in_flight`)."""
    owed = [OutboxStatus.PENDING.value]
    if in_flight:
        owed.append(OutboxStatus.SENDING.value)
    conn.execute(
        update(outbox)
        .where(outbox.c.endpoint_id.in_(list(endpoint_ids)), outbox.c.status.in_(owed))
        .values(status=OutboxStatus.FAILED.value, error_code=code, error_text=reason,
                lease_token=None, lease_expires_at=None, updated_at=now))


def rotate(db: Database, endpoint_id: str, secret: str, overlap_until: datetime,
           now: datetime) -> WebhookEndpoint | None:
    """A new secret; the old one still signs (beside it) until `overlap_until`."""
    with db.write() as conn:
        row = conn.execute(select(w).where(w.c.id == endpoint_id)).mappings().first()
        if row is None:
            return None
        conn.execute(update(w).where(w.c.id == endpoint_id).values(
            secret=secret, previous_secret=row["secret"], previous_until=overlap_until,
            updated_at=now))
    return get(db, endpoint_id)


def set_enabled(db: Database, endpoint_id: str, enabled: bool, reason: str | None,
                now: datetime) -> bool:
    """Disable (with the reason, e.g. the receiver answered 410) or enable again."""
    with db.write() as conn:
        done = conn.execute(update(w).where(w.c.id == endpoint_id).values(
            enabled=enabled, disabled_reason=None if enabled else reason, updated_at=now))
        if not enabled:  # a disabled endpoint is owed nothing more
            _give_up(conn, [endpoint_id], "endpoint_disabled",
                     reason or "the endpoint was disabled", now)
    return bool(done.rowcount)


def disable_account(conn: Connection, account_id: int, reason: str, now: datetime) -> int:
    """Disable every endpoint of an account in the caller's transaction (a deleted account
    is pushed nothing more), giving up what they were owed."""
    ids = list(conn.execute(select(w.c.id).where(w.c.account_id == account_id,
                                                 w.c.enabled.is_(True))).scalars())
    if ids:
        conn.execute(update(w).where(w.c.id.in_(ids)).values(
            enabled=False, disabled_reason=reason, updated_at=now))
        _give_up(conn, ids, "endpoint_disabled", reason, now)
    return len(ids)


def replay(db: Database, endpoint_id: str, since: datetime | None, item_id: str | None,
           now: datetime) -> int:
    """Queue again what an endpoint was sent or gave up on (all since a time, or one
    item): same event ids, so a receiver that already has one can tell."""
    settled = [OutboxStatus.SENT.value, OutboxStatus.FAILED.value]
    where = [outbox.c.endpoint_id == endpoint_id, outbox.c.status.in_(settled)]
    if since is not None:
        where.append(outbox.c.created_at >= since)
    if item_id is not None:
        where.append(outbox.c.id == item_id)
    with db.write() as conn:
        done = conn.execute(update(outbox).where(*where).values(
            status=OutboxStatus.PENDING.value, due_at=now, attempts=0, error_code=None,
            error_text=None, updated_at=now))
    return int(done.rowcount)


def deliveries(db: Database, endpoint_id: str, limit: int) -> list[dict[str, Any]]:
    """The latest items owed to or sent to an endpoint, newest first (for operators)."""
    o = outbox.c
    query = (select(o.id, o.event_type, o.status, o.attempts, o.error_code, o.error_text,
                    o.created_at, o.updated_at)
             .where(o.endpoint_id == endpoint_id).order_by(o.id.desc()).limit(limit))
    with db.read() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


# --- fan-out, inside the transaction of the change -------------------------------


_ENABLED = select(w.c.id, w.c.account_id, w.c.url, w.c.events).where(w.c.enabled.is_(True))


def _subscribers(conn: Connection) -> dict[int, list[tuple[str, str, frozenset[str]]]]:
    """Enabled endpoints by account: (id, url, events). The table is small and this runs
    once per transaction, so an idle feature costs one indexed read."""
    found: dict[int, list[tuple[str, str, frozenset[str]]]] = defaultdict(list)
    rows = conn.execute(_ENABLED)
    for endpoint_id, account_id, url, events in rows:
        found[account_id].append((endpoint_id, url, frozenset(events.split("\n"))))
    return found


def message_events(conn: Connection, changes: Sequence[tuple[str, int, str, str]]) -> None:
    """Outbox items for status changes written as audit events (message id, time in
    microseconds, status, detail): one per endpoint subscribed to the event it raises."""
    # Statuses are str enums: their values find them in STATUS_EVENTS, and changes that
    # raise no event (acceptance, dispatch) cost no lookup each, inside the writer's turn.
    wanted = [(mid, at, status) for mid, at, status, _ in changes if status in STATUS_EVENTS]
    if not wanted:
        return
    subscribers = _subscribers(conn)
    if not subscribers:
        return
    m = messages.c
    ids = sorted({mid for mid, _, _ in wanted})
    found: dict[str, Mapping[Any, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        query = select(m.id, m.account_id, m.recipient, m.sender, m.client_ref, m.batch_id,
                       m.segments, m.carrier, m.error_code, m.error_text).where(
            m.id.in_(chunk), m.account_id.in_(list(subscribers)))
        found.update((r["id"], r) for r in conn.execute(query).mappings())
    rows: list[dict[str, Any]] = []
    for mid, at_micros, value in wanted:
        row = found.get(mid)
        if row is None:
            continue
        status = STATUSES[value]
        event = STATUS_EVENTS[status]
        at = from_micros(at_micros)
        data = message_data(
            message_id=mid, status=status, to=row["recipient"], sender=row["sender"],
            client_ref=row["client_ref"], batch_id=row["batch_id"],
            segments=row["segments"], carrier=row["carrier"],
            error_code=row["error_code"] if status.public.value == "failed" else None,
            error_text=row["error_text"], at=at)
        rows += _items(subscribers[row["account_id"]], row["account_id"], event, at, data,
                       message_id=mid)
    _insert(conn, rows, at=None)


def emit(conn: Connection, account_id: int, event: EventType, at: datetime,
         data: dict[str, Any], *, subject: str | None = None,
         inbound_id: str | None = None) -> int:
    """Outbox items for one event that is not a message status (inbound.received,
    optout.created, batch.completed); `subject` orders the events of one thing. Returns
    how many endpoints it is owed to."""
    endpoints = _subscribers(conn).get(account_id, [])
    rows = _items(endpoints, account_id, event, at, data, message_id=subject,
                  inbound_id=inbound_id)
    _insert(conn, rows, at=at)
    return len(rows)


def _items(endpoints: Sequence[tuple[str, str, frozenset[str]]], account_id: int,
           event: EventType, at: datetime, data: dict[str, Any], *,
           message_id: str | None = None, inbound_id: str | None = None
           ) -> list[dict[str, Any]]:
    targets = [(eid, url) for eid, url, events in endpoints if event.value in events]
    if not targets:
        return []
    body = json.dumps(envelope(event, at, data), separators=(",", ":"), ensure_ascii=False)
    return [{
        "id": new_id(), "channel": CHANNEL, "account_id": account_id, "address": url,
        "inbound_id": inbound_id, "message_id": message_id,
        "status": OutboxStatus.PENDING.value, "attempts": 0, "endpoint_id": eid,
        "event_type": event.value, "payload": body, "_at": at,
    } for eid, url in targets]


def _insert(conn: Connection, rows: list[dict[str, Any]], at: datetime | None) -> None:
    if not rows:
        return
    for row in rows:
        when = row.pop("_at") if at is None else at
        row.pop("_at", None)
        row["created_at"] = row["due_at"] = row["updated_at"] = when
    conn.execute(insert(outbox), rows)


def owed_filter() -> Any:
    """Claim condition for the webhook channel: no earlier item for the same endpoint
    and subject is still owed (per-message order)."""
    earlier = outbox.alias("earlier")
    # Events about no one thing (no subject) have no order to keep: no probe for them.
    return outbox.c.message_id.is_(None) | ~select(earlier.c.id).where(
        earlier.c.endpoint_id == outbox.c.endpoint_id,
        earlier.c.message_id == outbox.c.message_id,
        earlier.c.id < outbox.c.id,
        # Literal SQL, as the partial index ix_outbox_order has it: with bound values
        # SQLite cannot tell the index applies and probed every item of the endpoint for
        # each candidate (a claim over 6,000 waiting events took 6 s instead of 8 ms).
        text(f"earlier.{OUTBOX_OWED_SQL}"),
    ).exists()
