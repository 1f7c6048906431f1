"""A mail's receipt is queued once whichever nodes try (spool/mail.py), on SQLite and
PostgreSQL: the listener that took the mail, and the receipts job every dispatching node
runs, which queues a receipt a crash lost."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy

from hub.ids import new_id
from hub.mail import Mail, NoticeKind
from hub.model import Account, NewOutboxItem
from spool import SqlSpool
from spool.tables import mail_notices

NOW = datetime.now(UTC).replace(microsecond=0)


def _receipt(account: Account) -> NewOutboxItem:
    return NewOutboxItem(new_id(), "email", account.id, "ops@acme.co.za")


def _receipts_queued(spool: SqlSpool, mail_id: str) -> int:
    with spool.db.read() as conn:
        return int(
            conn.execute(
                sqlalchemy.select(sqlalchemy.func.count()).where(
                    mail_notices.c.mail_id == mail_id,
                    mail_notices.c.kind == NoticeKind.RECEIPT.value,
                )
            ).scalar_one()
        )


def test_a_receipt_is_queued_once_by_the_listener_and_the_recovery_of_any_node(
    spool: SqlSpool, make_account: Callable[..., Account]
) -> None:
    account = make_account("acme")
    mail = Mail(
        new_id(),
        account.id,
        "ops@acme.co.za",
        "ops@acme.co.za",
        "<m@acme>",
        "hi",
        NOW,
        receipts=True,
    )
    spool.create_mail(mail)
    # One node's recovery, then another's: the second finds it queued.
    assert spool.queue_mail_receipt(mail.id, _receipt(account), NOW)
    assert not spool.queue_mail_receipt(mail.id, _receipt(account), NOW)
    # The listener, slow to finish the mail, records its refusals but queues no second.
    spool.finish_mail(
        mail.id, ["0821234567: no credit"], [(_receipt(account), NoticeKind.RECEIPT)], NOW
    )
    assert _receipts_queued(spool, mail.id) == 1
    stored = spool.get_mail(mail.id)
    assert stored is not None and stored.refused == ("0821234567: no credit",)
    # A mail the listener finished first: the recovery queues nothing more.
    other = Mail(
        new_id(),
        account.id,
        "ops@acme.co.za",
        "ops@acme.co.za",
        "<n@acme>",
        "hi",
        NOW,
        receipts=True,
    )
    spool.create_mail(other)
    spool.finish_mail(other.id, [], [(_receipt(account), NoticeKind.RECEIPT)], NOW)
    assert not spool.queue_mail_receipt(other.id, _receipt(account), NOW)
    assert _receipts_queued(spool, other.id) == 1
