"""Inbound messages: store them once each (carriers redeliver), link each to the message
it answers (see `_answered`), and hand unrouted ones to the hub's routing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, update

from hub.events import EventType, inbound_data
from hub.model import Inbound, InboundKind, InboundMessage, NewInbound, NewOutboxItem
from hub.optouts import NewOptOut, OptOutMethod
from spool import webhooks
from spool.engine import Database
from spool.optouts import create_optout
from spool.outbox import outbox_values
from spool.tables import account_sender_ids, accounts, inbound, messages, outbox


def store(db: Database, items: Sequence[NewInbound]) -> list[Inbound]:
    """Commit new inbound messages; a redelivered one returns the stored record."""
    stored: list[Inbound] = []
    with db.write() as conn:
        for item in items:
            existing = _existing(conn, item)
            stored.append(existing if existing is not None else _insert(conn, item))
    return stored


def _existing(conn: Connection, item: NewInbound) -> Inbound | None:
    mo = item.message
    if mo.carrier_message_id is None:
        return None
    row = conn.execute(
        select(inbound).where(inbound.c.carrier == mo.carrier,
                              inbound.c.carrier_message_id == mo.carrier_message_id)
    ).mappings().first()
    return None if row is None else inbound_from_row(row)


# How far back a reply may answer: a handset answering an older message is chat.
REPLY_WINDOW = timedelta(days=7)


def _answered(conn: Connection, mo: InboundMessage) -> tuple[bool, str | None, int | None]:
    """(whether any message could be the one answered, and if it is known, the id of
    the one it answers and its account).

    Candidates are the messages sent to the reply's sender in the REPLY_WINDOW before it
    whose sender id is the number the reply was sent to ('+' ignored), or is no number
    (none, or a name such as ACME: a handset answers those through the carrier's own
    number, which the hub does not know). The reply answers the latest candidate only
    if every candidate is one account's: when two accounts texted the handset from the
    same number (a shared short code, the carrier's number), the hub cannot tell whom it
    answers, so it stores the reply unlinked (no account sees it) rather than risk
    showing it to the wrong one."""
    bare = mo.recipient.lstrip("+")
    sender = messages.c.sender
    query = (select(messages.c.id, messages.c.account_id)
             .where(messages.c.recipient == mo.sender,
                    messages.c.accepted_at >= mo.received_at - REPLY_WINDOW,
                    or_(sender.in_((bare, f"+{bare}")), sender.is_(None),
                        sender.regexp_match("[^0-9+]")))
             .order_by(messages.c.accepted_at.desc(), messages.c.id.desc()))
    latest = conn.execute(query.limit(1)).first()
    if latest is None:
        return False, None, None
    other = conn.execute(query.where(messages.c.account_id != latest.account_id)
                         .limit(1)).first()
    if other is not None:
        return True, None, None
    return True, latest.id, latest.account_id


def _number_owner(conn: Connection, number: str) -> int | None:
    """The one live account that sends from `number` ('+' ignored), if only one does: a
    STOP that answers no recent message, sent to an account's own number, still stops
    that account (WASPA); a number several accounts send from says nothing."""
    bare = number.lstrip("+")
    s = account_sender_ids
    owners = conn.execute(
        select(s.c.account_id).distinct().join(accounts, accounts.c.id == s.c.account_id)
        .where(s.c.sender_id.in_((bare, f"+{bare}")), accounts.c.deleted_at.is_(None))
        .limit(2)).scalars().all()
    return owners[0] if len(owners) == 1 else None


def _insert(conn: Connection, item: NewInbound) -> Inbound:
    mo = item.message
    answers, in_reply_to, account_id = _answered(conn, mo)
    kind = (InboundKind.OPT_OUT if item.opt_out
            else InboundKind.REPLY if answers else InboundKind.UNSOLICITED)
    if kind is InboundKind.OPT_OUT and account_id is None:
        account_id = _number_owner(conn, mo.recipient)
    record = Inbound(
        id=item.id, carrier=mo.carrier, sender=mo.sender, recipient=mo.recipient,
        text=mo.text, received_at=mo.received_at, kind=kind,
        carrier_message_id=mo.carrier_message_id,
        account_id=account_id, in_reply_to=in_reply_to,
    )
    conn.execute(insert(inbound).values(**_values(record)))
    if account_id is not None:
        webhooks.emit(conn, account_id, EventType.INBOUND_RECEIVED, mo.received_at,
                      inbound_data(record), inbound_id=record.id)
    if kind is InboundKind.OPT_OUT and account_id is not None:
        # WASPA: the number goes on the account's list with the message that said so.
        create_optout(conn, NewOptOut(account_id, mo.sender, OptOutMethod.REPLY,
                                      mo.received_at, inbound_id=item.id))
    return record


def _values(record: Inbound) -> dict[str, Any]:
    return {
        "id": record.id, "carrier": record.carrier,
        "carrier_message_id": record.carrier_message_id, "sender": record.sender,
        "recipient": record.recipient, "text": record.text, "kind": record.kind.value,
        "account_id": record.account_id, "in_reply_to": record.in_reply_to,
        "received_at": record.received_at,
    }


def inbound_from_row(row: Mapping[Any, Any]) -> Inbound:
    return Inbound(
        id=row["id"], carrier=row["carrier"], sender=row["sender"],
        recipient=row["recipient"], text=row["text"], received_at=row["received_at"],
        kind=InboundKind(row["kind"]), carrier_message_id=row["carrier_message_id"],
        account_id=row["account_id"], in_reply_to=row["in_reply_to"],
    )


def get(db: Database, inbound_id: str) -> Inbound | None:
    with db.read() as conn:
        row = conn.execute(select(inbound).where(inbound.c.id == inbound_id)).mappings().first()
    return None if row is None else inbound_from_row(row)


def for_account(db: Database, account_id: int, since: datetime | None,
                limit: int) -> list[Inbound]:
    query = select(inbound).where(inbound.c.account_id == account_id)
    if since is not None:
        query = query.where(inbound.c.received_at >= since)
    query = query.order_by(inbound.c.received_at, inbound.c.id).limit(limit)
    with db.read() as conn:
        return [inbound_from_row(r) for r in conn.execute(query).mappings()]


def page(db: Database, account_id: int | None, since: datetime | None,
         after: tuple[datetime, str] | None, limit: int) -> list[Inbound]:
    """One page in the order received, after (received_at, id) `after`."""
    query = select(inbound)
    if account_id is not None:
        query = query.where(inbound.c.account_id == account_id)
    if since is not None:
        query = query.where(inbound.c.received_at >= since)
    if after is not None:
        at, last_id = after
        query = query.where(or_(inbound.c.received_at > at,
                                and_(inbound.c.received_at == at, inbound.c.id > last_id)))
    query = query.order_by(inbound.c.received_at, inbound.c.id).limit(limit)
    with db.read() as conn:
        return [inbound_from_row(r) for r in conn.execute(query).mappings()]


def unrouted(db: Database, limit: int) -> list[Inbound]:
    query = (select(inbound).where(inbound.c.routed_at.is_(None))
             .order_by(inbound.c.received_at, inbound.c.id).limit(limit))
    with db.read() as conn:
        return [inbound_from_row(r) for r in conn.execute(query).mappings()]


def route(db: Database, inbound_ids: Sequence[str], items: Sequence[NewOutboxItem],
          now: datetime) -> None:
    """Mark inbound messages routed and queue what they lead to, in one transaction, so
    a crash leaves them either unrouted (routed again) or routed with their outbox."""
    with db.write() as conn:
        won = set()
        for inbound_id in inbound_ids:
            # Only the router that marks a message routed queues its items: two nodes
            # routing the same message cannot queue its email twice.
            done = conn.execute(update(inbound).where(inbound.c.id == inbound_id,
                                                      inbound.c.routed_at.is_(None))
                                .values(routed_at=now))
            if done.rowcount:
                won.add(inbound_id)
        rows = [outbox_values(i, now) for i in items if i.inbound_id in won]
        if rows:
            conn.execute(insert(outbox), rows)




