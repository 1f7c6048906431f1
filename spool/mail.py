"""Email-to-SMS storage: account mail settings and allowed senders, accepted mails, the
receipts and replies queued about them (each once, whichever nodes queue them), and which
mails' delivery results are final."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, insert, or_, select, update

from hub.errors import Conflict
from hub.mail import Mail, MailSettings, NoticeKind, SubjectMode, TooLongMode
from hub.model import FINAL_STATUSES, Account, NewOutboxItem
from spool import accounts as spool_accounts
from spool.engine import Database
from spool.outbox import outbox_values
from spool.tables import (
    mail_accounts,
    mail_notices,
    mail_senders,
    mails,
    messages,
    outbox,
)


def get_settings(db: Database, account_id: int) -> MailSettings:
    with db.read() as conn:
        row = conn.execute(select(mail_accounts).where(
            mail_accounts.c.account_id == account_id)).mappings().first()
        senders = conn.execute(select(mail_senders.c.pattern).where(
            mail_senders.c.account_id == account_id).order_by(mail_senders.c.pattern)).scalars()
        allowed = tuple(senders)
    if row is None:
        return MailSettings(account_id, allowed_senders=allowed)
    return MailSettings(
        account_id=account_id, allowed_senders=allowed,
        subject_mode=SubjectMode(row["subject_mode"]), too_long=TooLongMode(row["too_long"]),
        receipts=row["receipts"], final_receipts=row["final_receipts"],
        replies=row["replies"], cut_markers=_lines(row["cut_markers"]),
    )


def save_settings(db: Database, settings: MailSettings) -> None:
    """Store the settings and replace the account's allowed senders; a sender pattern
    another account already has is a Conflict (a sender must name one account)."""
    values = {
        "subject_mode": settings.subject_mode.value, "too_long": settings.too_long.value,
        "receipts": settings.receipts, "final_receipts": settings.final_receipts,
        "replies": settings.replies, "cut_markers": "\n".join(settings.cut_markers),
    }
    account_id = settings.account_id
    with db.write() as conn:
        found = conn.execute(update(mail_accounts).where(
            mail_accounts.c.account_id == account_id).values(**values))
        if not found.rowcount:
            conn.execute(insert(mail_accounts).values(account_id=account_id, **values))
        _replace_senders(conn, account_id, settings.allowed_senders)


def _replace_senders(conn: Connection, account_id: int, patterns: Sequence[str]) -> None:
    wanted = sorted({p.strip().lower() for p in patterns if p.strip()})
    if wanted:
        taken = conn.execute(select(mail_senders.c.pattern).where(
            mail_senders.c.pattern.in_(wanted), mail_senders.c.account_id != account_id)
        ).scalars().first()
        if taken is not None:
            raise Conflict(f"sender '{taken}' is already allowed for another account")
    conn.execute(delete(mail_senders).where(mail_senders.c.account_id == account_id))
    if wanted:
        conn.execute(insert(mail_senders),
                     [{"pattern": p, "account_id": account_id} for p in wanted])


def sender_account(db: Database, address: str) -> Account | None:
    """The account that allows this sender address, or its domain (the address wins)."""
    address = address.strip().lower()
    domain = address.rpartition("@")[2]
    query = select(mail_senders.c.pattern, mail_senders.c.account_id).where(
        mail_senders.c.pattern.in_([address, domain]))
    with db.read() as conn:
        found = {pattern: account_id for pattern, account_id in conn.execute(query)}
    account_id = found.get(address, found.get(domain))
    return None if account_id is None else spool_accounts.get_account_by_id(db, account_id)


def create_mail(db: Database, mail: Mail) -> None:
    create_mails(db, [mail])


def create_mails(db: Database, records: Sequence[Mail]) -> None:
    """Several mails in one transaction: the listener group-commits concurrent mails."""
    with db.write() as conn:
        conn.execute(insert(mails), [_mail_values(m) for m in records])


def discard_mail(db: Database, mail_id: str) -> bool:
    """Remove a mail record whose intake failed (its sender was answered 4xx or 5xx and
    sends it again or not at all), unless SMS were committed under it after all."""
    has_sms = exists().where(messages.c.batch_id == mail_id)
    with db.write() as conn:
        done = conn.execute(delete(mails).where(mails.c.id == mail_id, ~has_sms))
    return bool(done.rowcount)


def finish_mail(db: Database, mail_id: str, refused: Sequence[str],
                notices: Sequence[tuple[NewOutboxItem, NoticeKind]], now: datetime) -> None:
    """Record the recipients intake refused and queue the receipt, in one transaction
    (not if another node's recovery queued it meanwhile: a mail gets one receipt)."""
    with db.write() as conn:
        conn.execute(update(mails).where(mails.c.id == mail_id)
                     .values(refused="\n".join(refused)))
        if _receipt_queued(conn, mail_id):
            notices = [(item, kind) for item, kind in notices if kind is not NoticeKind.RECEIPT]
        _queue(conn, mail_id, notices, now)


def _receipt_queued(conn: Connection, mail_id: str) -> bool:
    """Whether the mail's receipt is queued, its row locked first on PostgreSQL: the
    nodes that may queue it (the listener, any node's recovery) then take turns."""
    conn.execute(select(mails.c.id).where(mails.c.id == mail_id).with_for_update())
    return conn.execute(select(mail_notices.c.item_id).where(
        mail_notices.c.mail_id == mail_id,
        mail_notices.c.kind == NoticeKind.RECEIPT.value)).first() is not None


def _queue(conn: Connection, mail_id: str,
           notices: Sequence[tuple[NewOutboxItem, NoticeKind]], now: datetime) -> None:
    if not notices:
        return
    conn.execute(insert(outbox), [outbox_values(item, now) for item, _ in notices])
    conn.execute(insert(mail_notices), [
        {"item_id": item.id, "mail_id": mail_id, "kind": kind.value} for item, kind in notices
    ])


def receipts_missing(db: Database, after_id: str, before_id: str, limit: int) -> list[Mail]:
    """Mails with ids in [after_id, before_id) that want a receipt, have SMS, and have no
    receipt queued: the listener stopped between intake's commit and queueing it. Mail
    ids are ULIDs, so an id range is a time range read from the primary key."""
    has_receipt = exists().where(mail_notices.c.mail_id == mails.c.id,
                                 mail_notices.c.kind == NoticeKind.RECEIPT.value)
    has_sms = exists().where(messages.c.batch_id == mails.c.id)
    query = (select(mails)
             .where(mails.c.id >= after_id, mails.c.id < before_id,
                    mails.c.receipts.is_(True), ~has_receipt, has_sms)
             .order_by(mails.c.id).limit(limit))
    with db.read() as conn:
        return [mail_from_row(r) for r in conn.execute(query).mappings()]


def queue_receipt(db: Database, mail_id: str, item: NewOutboxItem, now: datetime) -> bool:
    """Queue a mail's receipt unless one is queued already: False then (also when
    another node's recovery queued it a moment before)."""
    with db.write() as conn:
        if _receipt_queued(conn, mail_id):
            return False
        _queue(conn, mail_id, [(item, NoticeKind.RECEIPT)], now)
    return True


def get_mail(db: Database, mail_id: str) -> Mail | None:
    with db.read() as conn:
        row = conn.execute(select(mails).where(mails.c.id == mail_id)).mappings().first()
    return None if row is None else mail_from_row(row)


def mail_for_message(db: Database, message_id: str) -> Mail | None:
    """The mail an SMS was made from (its batch id names the mail), if any."""
    query = select(mails).join(messages, messages.c.batch_id == mails.c.id).where(
        messages.c.id == message_id)
    with db.read() as conn:
        row = conn.execute(query).mappings().first()
    return None if row is None else mail_from_row(row)


def notice(db: Database, item_id: str) -> tuple[Mail, NoticeKind] | None:
    query = select(mails, mail_notices.c.kind).join(
        mail_notices, mail_notices.c.mail_id == mails.c.id).where(
        mail_notices.c.item_id == item_id)
    with db.read() as conn:
        row = conn.execute(query).mappings().first()
    return None if row is None else (mail_from_row(row), NoticeKind(row["kind"]))


def final_receipts_due(db: Database, limit: int, settled_before: str) -> list[Mail]:
    """Mails that asked for a final receipt, not yet sent, whose SMS are all final. One
    that wants a first receipt waits until it is queued, so the two go out in order, or
    until its id is below `settled_before` (the listener had time to queue it; a lost one
    is queued by the recovery first)."""
    open_message = exists().where(
        messages.c.batch_id == mails.c.id,
        messages.c.status.not_in([s.value for s in FINAL_STATUSES]),
    )
    has_receipt = exists().where(mail_notices.c.mail_id == mails.c.id,
                                 mail_notices.c.kind == NoticeKind.RECEIPT.value)
    receipt_settled = or_(mails.c.receipts.is_(False), has_receipt,
                          mails.c.id < settled_before)
    query = (
        select(mails)
        .where(and_(mails.c.final_receipt.is_(True), mails.c.final_sent_at.is_(None)),
               ~open_message, receipt_settled)
        .order_by(mails.c.received_at).limit(limit)
    )
    with db.read() as conn:
        return [mail_from_row(r) for r in conn.execute(query).mappings()]


def queue_final_receipt(db: Database, mail_id: str, item: NewOutboxItem | None,
                        now: datetime) -> bool:
    """Mark the final receipt sent and queue it, once: False if already done."""
    with db.write() as conn:
        done = conn.execute(update(mails).where(mails.c.id == mail_id,
                                                mails.c.final_sent_at.is_(None))
                            .values(final_sent_at=now))
        if not done.rowcount:
            return False
        _queue(conn, mail_id, [] if item is None else [(item, NoticeKind.FINAL)], now)
    return True




def _mail_values(mail: Mail) -> dict[str, Any]:
    return {
        "id": mail.id, "account_id": mail.account_id, "sender": mail.sender,
        "reply_to": mail.reply_to, "message_id": mail.message_id, "subject": mail.subject,
        "received_at": mail.received_at, "receipts": mail.receipts,
        "final_receipt": mail.final_receipt, "replies": mail.replies,
        "attachments": "\n".join(mail.attachments), "refused": "\n".join(mail.refused),
        "final_sent_at": mail.final_sent_at,
    }


def mail_from_row(row: Mapping[Any, Any]) -> Mail:
    return Mail(
        id=row["id"], account_id=row["account_id"], sender=row["sender"],
        reply_to=row["reply_to"], message_id=row["message_id"], subject=row["subject"],
        received_at=row["received_at"], receipts=row["receipts"],
        final_receipt=row["final_receipt"], replies=row["replies"],
        attachments=_lines(row["attachments"]), refused=_lines(row["refused"]),
        final_sent_at=row["final_sent_at"],
    )


def _lines(text: str) -> tuple[str, ...]:
    return tuple(line for line in text.split("\n") if line)
