"""POPIA in the spool: texts purged past the retention a bounded batch per transaction,
what is held about a number read and erased, the privacy log kept, and each account's
WASPA rule for marketing texts without an opt-out instruction."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, delete, desc, func, or_, select, update

from hub.errors import NotFound
from hub.events import EventType
from hub.model import FINAL_STATUSES, ErrorInfo, Source, Status
from hub.privacy import PURGED, Holdings, PrivacyEntry, written_forms
from spool.engine import Database
from spool.inbound import inbound_from_row
from spool.optouts import _from_row as optout_from_row
from spool.queue import cancel_unsent_to
from spool.rows import message_from_row
from spool.tables import (
    accounts,
    idempotency_keys,
    inbound,
    inbound_parts,
    mails,
    message_callbacks,
    messages,
    metadata,
    optouts,
    outbox,
    privacy_log,
)

_FINAL = sorted(s.value for s in FINAL_STATUSES)
_RECEIVED = EventType.INBOUND_RECEIVED.value
# A payload already purged says so in its compact JSON (spool/webhooks.py writes it).
_PURGED_PAYLOAD = '%"text":' + json.dumps(PURGED) + "%"


def _purgeable(kind: str, before: datetime) -> tuple[Table, Any, list[Any]]:
    """Where a kind of hub.privacy.PURGE_KINDS keeps its text, and when a row is old."""
    if kind == "messages":  # a message still to be sent keeps its text, whatever its age
        return messages, messages.c.text, [messages.c.accepted_at < before,
                                           messages.c.status.in_(_FINAL)]
    if kind == "replies":
        return inbound, inbound.c.text, [inbound.c.received_at < before]
    if kind == "mail_subjects":
        return mails, mails.c.subject, [mails.c.received_at < before]
    return outbox, outbox.c.payload, [outbox.c.created_at < before,
                                      outbox.c.event_type == _RECEIVED,
                                      outbox.c.payload.is_not(None)]


def purge_texts(db: Database, kind: str, before: datetime, after: str,
                limit: int) -> tuple[int, str | None]:
    """One bounded step of the retention purge of `kind` (one of PURGE_KINDS): the next `limit`
    rows after id `after` that still hold text and are older than `before`. They are
    found in a read transaction (the scan takes no write lock) and rewritten in a short
    write transaction of their own. Returns how many were purged and the id to go on
    after, or None once the kind is done. Status, cost, segments and events stay."""
    if kind == "callbacks":
        return _purge_callbacks(db, before, after, limit)
    table, column, old = _purgeable(kind, before)
    key = table.c.id
    unpurged = (column.not_like(_PURGED_PAYLOAD) if kind == "payloads"
                else column != PURGED)
    query = (select(key, column) if kind == "payloads" else select(key)).where(
        key > after, unpurged, *old).order_by(key).limit(limit)
    with db.read() as conn:
        found = conn.execute(query).all()
    if not found:
        return 0, None
    ids = [row[0] for row in found]
    with db.write() as conn:
        if kind == "payloads":
            for row in found:  # the conditions again: nothing may have changed since
                conn.execute(update(outbox).where(key == row[0], unpurged)
                             .values(payload=_without_text(row[1])))
        else:
            conn.execute(update(table).where(key.in_(ids), unpurged, *old)
                         .values({column.name: PURGED}))
    return len(ids), (ids[-1] if len(ids) == limit else None)


def _purge_callbacks(db: Database, before: datetime, after: str,
                     limit: int) -> tuple[int, str | None]:
    """The push URLs of finished messages accepted before `before`: no status of theirs
    will be pushed again, and a client's URL may hold the number. Deleted, not rewritten."""
    mc = message_callbacks.c
    query = (select(mc.message_id).join(messages, messages.c.id == mc.message_id)
             .where(mc.message_id > after, messages.c.accepted_at < before,
                    messages.c.status.in_(_FINAL))
             .order_by(mc.message_id).limit(limit))
    with db.read() as conn:
        ids = list(conn.scalars(query))
    if not ids:
        return 0, None
    with db.write() as conn:
        conn.execute(delete(message_callbacks).where(mc.message_id.in_(ids)))
    return len(ids), (ids[-1] if len(ids) == limit else None)


def purge_leftovers(db: Database, before: datetime) -> dict[str, int]:
    """What is deleted rather than rewritten: parts of long replies never completed, and
    the stored answers of idempotency keys (normally gone within a day anyway)."""
    with db.write() as conn:
        return {
            "parts": _delete(conn, inbound_parts, inbound_parts.c.received_at < before),
            "answers": _delete(conn, idempotency_keys, idempotency_keys.c.created_at < before),
        }


def _without_text(payload: str) -> str:
    body = json.loads(payload)
    data = body.get("data")
    if isinstance(data, dict) and "text" in data:
        data["text"] = PURGED
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _delete(conn: Connection, table: Table, condition: Any) -> int:
    return int(conn.execute(delete(table).where(condition)).rowcount or 0)


def record(db: Database, at: datetime, action: str, subject: str | None, actor: str,
           detail: dict[str, int]) -> None:
    with db.write() as conn:
        _record(conn, at, action, subject, actor, detail)


def _record(conn: Connection, at: datetime, action: str, subject: str | None, actor: str,
            detail: dict[str, int]) -> None:
    conn.execute(privacy_log.insert().values(at=at, action=action, subject=subject,
                                             actor=actor, detail=json.dumps(detail)))


def log_entries(db: Database, limit: int) -> list[PrivacyEntry]:
    """The latest rows of the privacy log, newest first."""
    p = privacy_log
    with db.read() as conn:
        rows = conn.execute(select(p).order_by(desc(p.c.id)).limit(limit)).all()
    return [PrivacyEntry(int(r.id), r.at, r.action, r.subject, r.actor, json.loads(r.detail))
            for r in rows]


def holdings(db: Database, number: str) -> Holdings:
    """Every row that names `number`: messages to it, its replies, its opt-out entries,
    rows of any consent table (a `number` or `recipient` column) the schema has, the push
    URLs and outbox items about it, and the mails its SMS came from or that refused it."""
    with db.read() as conn:
        sent = conn.execute(select(messages).where(messages.c.recipient == number)
                            .order_by(messages.c.id)).mappings()
        found = [message_from_row(r) for r in sent]
        replies = [inbound_from_row(r) for r in conn.execute(
            select(inbound).where(inbound.c.sender == number)
            .order_by(inbound.c.received_at, inbound.c.id)).mappings()]
        lists = [optout_from_row(r) for r in conn.execute(
            select(optouts).where(optouts.c.number == number).order_by(optouts.c.id))
            .mappings()]
        other = {t.name: _rows_naming(conn, t, number) for t in _consent_tables()}
        other["message_callbacks"] = [dict(r) for r in conn.execute(
            select(message_callbacks).where(_url_names(number))
            .order_by(message_callbacks.c.message_id)).mappings()]
        other["outbox"] = _outbox_about(conn, number)
        other["mails"] = _mails_about(conn, number)
    return Holdings(number, found, replies, lists, other)


def _mails_about(conn: Connection, number: str) -> list[dict[str, Any]]:
    """The mails an SMS to `number` was made from, and those that named it among their
    refused recipients: when, from whom, the subject, and only the refused lines that
    name it (the others name other people)."""
    forms = written_forms(number)
    from_mail = select(messages.c.batch_id).where(
        messages.c.recipient == number, messages.c.source == Source.SMTP.value)
    query = (select(mails.c.id, mails.c.account_id, mails.c.sender, mails.c.received_at,
                    mails.c.subject, mails.c.refused)
             .where(or_(mails.c.id.in_(from_mail),
                        *(mails.c.refused.contains(f, autoescape=True) for f in forms)))
             .order_by(mails.c.id))
    found = []
    for row in conn.execute(query).mappings():
        lines = [line for line in row["refused"].splitlines()
                 if any(f in line for f in forms)]
        found.append({**{k: row[k] for k in ("id", "account_id", "sender", "received_at",
                                             "subject")}, "refused": lines})
    return found


def _outbox_about(conn: Connection, number: str) -> list[dict[str, Any]]:
    """The webhook events, pushes and mail notices about its messages and replies (each
    names the number in its body; their bodies hold no message text, a reply's text is
    purged with the reply): where and when, not the bodies themselves."""
    o = outbox.c
    sent = select(messages.c.id).where(messages.c.recipient == number)
    received = select(inbound.c.id).where(inbound.c.sender == number)
    query = (select(o.id, o.channel, o.event_type, o.status, o.address, o.message_id,
                    o.inbound_id, o.created_at)
             .where(or_(o.message_id.in_(sent), o.inbound_id.in_(received)))
             .order_by(o.id))
    return [dict(r) for r in conn.execute(query).mappings()]


def _url_names(number: str) -> Any:
    """A push URL holding the number in any form a client writes it (hub.privacy)."""
    url = message_callbacks.c.url
    return or_(*(url.contains(form, autoescape=True) for form in written_forms(number)))


def _consent_tables() -> Sequence[Table]:
    return [t for name, t in sorted(metadata.tables.items())
            if "consent" in name and ("number" in t.c or "recipient" in t.c)]


def _rows_naming(conn: Connection, table: Table, number: str) -> list[dict[str, Any]]:
    column = table.c.number if "number" in table.c else table.c.recipient
    return [dict(r) for r in conn.execute(select(table).where(column == number)).mappings()]


def erase_number(db: Database, number: str, at: datetime, subject: str, actor: str,
                 also: Mapping[str, int] | None = None) -> dict[str, int]:
    """What POPIA lets a data subject have removed, in one transaction with its privacy
    log row: the texts of messages to `number` and of its replies (and their webhook
    bodies, and the subjects of the mails its messages came from), and the push URLs
    (message_callbacks) that hold the number. Its unsent messages are cancelled and
    refunded first: once their text is gone the dispatcher would send the marker. One a
    dispatcher holds now (`sending`) keeps its text, counted as in flight, since a retry
    would send it again. Opt-out entries stay: honouring them is a standing legal duty
    (WASPA, CPA s11), and the number is the only way to honour them. Status, billing and
    events stay (they hold no text). `also`: what was erased outside the spool (the FTP
    area's originals), counted in the same privacy log row."""
    sent_to = messages.c.recipient == number
    with db.write() as conn:
        replies = list(conn.scalars(select(inbound.c.id).where(inbound.c.sender == number)))
        done = {
            "cancelled": cancel_unsent_to(conn, number, None, False, ERASED, at),
            "messages": _erase(conn, messages,
                               and_(sent_to, messages.c.status != Status.SENDING.value)),
            "in_flight": _count(conn, and_(sent_to, messages.c.status == Status.SENDING.value,
                                           messages.c.text != PURGED)),
            "replies": _erase(conn, inbound, inbound.c.sender == number),
            "payloads": _erase_payloads(conn, replies),
            "mail_subjects": _erase_subjects(conn, number),
            # A client's dlr-url or callback URL naming the number: its pushes end here.
            "callbacks": _delete(conn, message_callbacks, _url_names(number)),
            **(also or {}),
        }
        _record(conn, at, "erase", subject, actor, done)
    return done


# What an unsent message to an erased number ends with (cancelled, its credit refunded).
ERASED = ErrorInfo("erased", "cancelled: the recipient's personal information was erased "
                             "(POPIA), its text with it")


def _count(conn: Connection, condition: Any) -> int:
    return int(conn.scalar(select(func.count()).select_from(messages).where(condition)) or 0)


def _erase_subjects(conn: Connection, number: str) -> int:
    """The subject of each mail an SMS to `number` was made from: with the account's
    subject mode `prepend` it is part of that SMS's text."""
    from_mail = select(messages.c.batch_id).where(
        messages.c.recipient == number, messages.c.source == Source.SMTP.value)
    statement = (update(mails).where(mails.c.id.in_(from_mail), mails.c.subject != PURGED)
                 .values(subject=PURGED))
    return int(conn.execute(statement).rowcount or 0)


def _erase(conn: Connection, table: Table, condition: Any) -> int:
    statement = update(table).where(condition, table.c.text != PURGED).values(text=PURGED)
    return int(conn.execute(statement).rowcount or 0)


def _erase_payloads(conn: Connection, inbound_ids: list[str]) -> int:
    count = 0
    for start in range(0, len(inbound_ids), 500):
        rows = conn.execute(select(outbox.c.id, outbox.c.payload).where(
            outbox.c.inbound_id.in_(inbound_ids[start:start + 500]),
            outbox.c.event_type == _RECEIVED, outbox.c.payload.is_not(None))).all()
        for row in rows:
            conn.execute(update(outbox).where(outbox.c.id == row.id)
                         .values(payload=_without_text(row.payload)))
        count += len(rows)
    return count


def set_marketing_optout(db: Database, account_name: str, rule: str) -> None:
    with db.write() as conn:
        changed = conn.execute(update(accounts).where(accounts.c.name == account_name)
                               .values(marketing_optout=rule)).rowcount
    if not changed:
        raise NotFound(f"no account named {account_name!r}")
