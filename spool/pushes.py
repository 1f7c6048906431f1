"""Delivery-report pushes in the dialects' shapes (Kannel dlr-url, Clickatell callbacks,
the XML deliveryReport): the callback a message's request asked for, stored with it at
acceptance; each account's own push URLs; and the fan-out that turns a status change
into one outbox item per push that asks for it, in the transaction of the change."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, insert, or_, select

from hub.events import stamp
from hub.ids import new_id
from hub.model import Callback, CallbackKind, OutboxStatus, Status
from hub.pushes import PUSHED, kannel_type, wants
from spool.bulk import bulk_insert
from spool.engine import Database
from spool.tables import (
    account_callbacks,
    accounts,
    from_micros,
    message_callbacks,
    messages,
    outbox,
)

CHANNEL = "push"
CALLBACK_COLUMNS = ("message_id", "kind", "url", "mask", "api_id")
_CHUNK = 500

ac = account_callbacks.c


def callback_row(message_id: str, callback: Callback) -> tuple[Any, ...]:
    """A message_callbacks row in driver form (CALLBACK_COLUMNS)."""
    return (message_id, callback.kind.value, callback.url, callback.mask, callback.api_id)


def store_callbacks(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """The callbacks of messages just accepted (only those that asked for one)."""
    bulk_insert(conn, message_callbacks, CALLBACK_COLUMNS, rows)


# --- an account's own push URLs ----------------------------------------------------


def account_urls(db: Database, account_id: int) -> dict[CallbackKind, str]:
    with db.read() as conn:
        rows = conn.execute(select(ac.kind, ac.url).where(ac.account_id == account_id))
        return {CallbackKind(kind): url for kind, url in rows}


def set_account_url(db: Database, account_id: int, kind: CallbackKind, url: str | None,
                    now: datetime) -> None:
    """Set (or, with None, remove) the account's URL for pushes of `kind`."""
    with db.write() as conn:
        conn.execute(delete(account_callbacks).where(ac.account_id == account_id,
                                                     ac.kind == kind.value))
        if url is not None:
            conn.execute(insert(account_callbacks).values(
                account_id=account_id, kind=kind.value, url=url, updated_at=now))


# --- fan-out, inside the transaction of the change -------------------------------


def message_pushes(conn: Connection, changes: Sequence[tuple[str, int, str, str]]) -> None:
    """Outbox items for status changes written as audit events (message id, time in
    microseconds, status, detail): one per push of the message, or of its account, that
    asks for the new status. Changes into statuses never pushed (acceptance, dispatch)
    cost nothing; the others one indexed read, plus one of each message that has a push."""
    wanted = [(mid, at, status) for mid, at, status, _ in changes if status in _PUSHED]
    if not wanted:
        return
    ids = sorted({mid for mid, _, _ in wanted})
    per_message = _message_callbacks(conn, ids)
    per_account = _account_callbacks(conn)
    if not per_message and not per_account:
        return
    with_xml = {a for a, urls in per_account.items() if CallbackKind.XML in urls}
    found = _messages(conn, ids, set(per_message), with_xml)
    rows: list[dict[str, Any]] = []
    for mid, at_micros, value in wanted:
        row = found.get(mid)
        if row is None:
            continue
        status = Status(value)
        urls = per_account.get(row["account_id"], {})
        targets = list(per_message.get(mid, ()))
        if CallbackKind.XML in urls:
            targets.append(Callback(CallbackKind.XML, None, 0))
        for callback in targets:
            url = callback.url or urls.get(callback.kind)
            if url is None or not wants(callback.kind, callback.mask, status,
                                        row["error_code"]):
                continue
            rows.append(_item(row, callback, url, status, from_micros(at_micros)))
    if rows:
        conn.execute(insert(outbox), rows)


_PUSHED = frozenset(s.value for s in PUSHED)


# Built once: these run in every transaction that records a status change.
_ANY_MESSAGE_CALLBACK = select(message_callbacks.c.message_id).limit(1)
_ACCOUNT_CALLBACKS = select(ac.account_id, ac.kind, ac.url)


def _message_callbacks(conn: Connection, ids: Sequence[str]) -> dict[str, list[Callback]]:
    mc = message_callbacks.c
    found: dict[str, list[Callback]] = {}
    # Most hubs have no dialect callbacks at all: one probe instead of a lookup by id.
    if conn.execute(_ANY_MESSAGE_CALLBACK).first() is None:
        return found
    for start in range(0, len(ids), _CHUNK):
        query = select(mc.message_id, mc.kind, mc.url, mc.mask, mc.api_id).where(
            mc.message_id.in_(ids[start:start + _CHUNK]))
        for mid, kind, url, mask, api_id in conn.execute(query):
            found.setdefault(mid, []).append(Callback(CallbackKind(kind), url, mask, api_id))
    return found


def _account_callbacks(conn: Connection) -> dict[int, dict[CallbackKind, str]]:
    """Every account's own URLs: a small table, read once per transaction."""
    found: dict[int, dict[CallbackKind, str]] = {}
    for account_id, kind, url in conn.execute(_ACCOUNT_CALLBACKS):
        found.setdefault(account_id, {})[CallbackKind(kind)] = url
    return found


def _messages(conn: Connection, ids: Sequence[str], with_callback: set[str],
              with_account_url: set[int]) -> dict[str, Mapping[Any, Any]]:
    """The messages that have a push: their own callback, or their account's XML URL."""
    m = messages.c
    found: dict[str, Mapping[Any, Any]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        mine = [i for i in chunk if i in with_callback]
        where: ColumnElement[bool] = m.id.in_(mine)
        if with_account_url:
            where = or_(where, and_(m.id.in_(chunk),
                                    m.account_id.in_(sorted(with_account_url))))
        query = (select(m.id, m.account_id, accounts.c.name.label("account"), m.recipient,
                        m.sender, m.client_ref, m.carrier, m.carrier_message_id, m.cost,
                        m.segments, m.error_code, m.error_text)
                 .join(accounts, accounts.c.id == m.account_id).where(where))
        found.update((r["id"], r) for r in conn.execute(query).mappings())
    return found


def _item(row: Mapping[Any, Any], callback: Callback, url: str, status: Status,
          at: datetime) -> dict[str, Any]:
    """One outbox item: the facts its channel formats (docs/pushes.md), fixed now so a
    retry sends the same push. Ordered per message and kind (endpoint_id is the kind)."""
    failed = status.public.value == "failed"
    dlr = kannel_type(status, row["error_code"])
    facts = {
        "kind": callback.kind.value, "url": url, "status": status.value,
        "state": status.public.value, "at": stamp(at), "id": row["id"],
        "account": row["account"], "to": row["recipient"], "from": row["sender"],
        "client_ref": row["client_ref"], "carrier": row["carrier"],
        "carrier_ref": row["carrier_message_id"], "cost": str(row["cost"]),
        "segments": row["segments"], "api_id": callback.api_id,
        "dlr": None if dlr is None else int(dlr),
        "error": ({"code": row["error_code"], "message": row["error_text"] or ""}
                  if failed and row["error_code"] else None),
    }
    return {
        "id": new_id(), "channel": CHANNEL, "account_id": row["account_id"], "address": url,
        "message_id": row["id"], "status": OutboxStatus.PENDING.value, "attempts": 0,
        "endpoint_id": callback.kind.value, "event_type": f"{callback.kind.value}.{status.value}",
        "payload": json.dumps(facts, separators=(",", ":"), ensure_ascii=False),
        "created_at": at, "due_at": at, "updated_at": at,
    }
