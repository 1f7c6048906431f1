"""Write helpers every queue operation shares: append audit events, refund credit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, exists, select, update

from hub.events import STATUS_EVENTS
from hub.model import Status
from hub.pushes import PUSHED
from spool import pushes, webhooks
from spool.bulk import bulk_insert, driver
from spool.rows import on_driver
from spool.tables import (
    Money,
    account_callbacks,
    accounts,
    message_callbacks,
    message_events,
    to_micros,
    webhook_endpoints,
)

# Values that end a lease; every transition out of `sending` applies them.
NO_LEASE: dict[str, Any] = {"lease_token": None, "lease_owner": None, "lease_expires_at": None}

_CREDIT = (
    update(accounts)
    .where(accounts.c.id == bindparam("b_id"))
    .values(balance=accounts.c.balance + bindparam("b_amount", type_=Money()))
)


EVENT_COLUMNS = ("message_id", "at", "status", "detail")
Event = tuple[str, int, str, str]


def event(message_id: str, at: datetime, status: Status, detail: str) -> Event:
    """One audit-trail row in driver form (EVENT_COLUMNS)."""
    return (message_id, to_micros(at), status.value, detail)


# Statuses whose events may raise a webhook event or a dialect push.
_RAISING = frozenset(status.value for status in (*STATUS_EVENTS, *PUSHED))
# Whether anything listens at all: webhook endpoints, a message's own push, an account's
# push URL: one read in every transaction that records a status, where spool.webhooks
# and spool.pushes asked three times between them (5-7 % of a dispatcher's record or
# receipt write when nothing listens, as on most hubs). Built once.
_LISTENERS = select(
    exists().where(webhook_endpoints.c.enabled.is_(True)),
    exists().select_from(message_callbacks),
    exists().select_from(account_callbacks),
)
_LISTENERS_SQLITE = on_driver(_LISTENERS)


def add_events(conn: Connection, events: Sequence[Event]) -> None:
    """Append to the audit trail; the webhook events and dialect pushes those changes
    raise are queued in the same transaction (spool.webhooks, spool.pushes)."""
    bulk_insert(conn, message_events, EVENT_COLUMNS, events)
    if not any(status in _RAISING for _, _, status, _ in events):
        return  # acceptance and dispatch raise nothing
    if conn.dialect.name == "sqlite":  # to the driver: SQLAlchemy's execution cost more
        hooks, own_pushes, account_pushes = driver(conn).execute(_LISTENERS_SQLITE).fetchone()
    else:
        hooks, own_pushes, account_pushes = conn.execute(_LISTENERS).one()
    if hooks:
        webhooks.message_events(conn, events)
    if own_pushes or account_pushes:
        pushes.message_pushes(conn, events)


def refund(conn: Connection, costs: Iterable[tuple[int, Decimal]]) -> None:
    """Give reserved credit back: one UPDATE per account, whatever the number of messages."""
    totals: dict[int, Decimal] = defaultdict(Decimal)
    for account_id, cost in costs:
        totals[account_id] += cost
    params = [{"b_id": aid, "b_amount": amount} for aid, amount in sorted(totals.items())]
    if params:
        conn.execute(_CREDIT, params)
