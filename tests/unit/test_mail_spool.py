"""The spool's email-to-SMS records on SQLite and PostgreSQL: settings and allowed
senders, mails linked to their SMS by batch id, receipts queued once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from ulid import ULID

from hub.errors import Conflict
from hub.mail import Mail, MailSettings, NoticeKind, SubjectMode, TooLongMode
from hub.model import Account, NewOutboxItem, OutboxStatus, Status, Transition
from spool import SqlSpool
from tests.factories import NOW, new_message

# `settled_before` bounds for final receipts: below every mail id made here, and above.
EARLIER, LATER = "0" * 26, "Z" * 26


def _mail(account: Account, **kw: object) -> Mail:
    values: dict[str, object] = {
        "id": str(ULID()), "account_id": account.id, "sender": "ops@acme.co.za",
        "reply_to": "ops@acme.co.za", "message_id": "<1@acme.co.za>", "subject": "Hi",
        "received_at": NOW, "receipts": True, "final_receipt": True,
        "attachments": ("a.pdf",),
    }
    values.update(kw)
    return Mail(**values)  # type: ignore[arg-type]


def test_settings_default_then_round_trip(spool: SqlSpool,
                                          make_account: Callable[..., Account]) -> None:
    account = make_account()
    assert spool.get_mail_settings(account.id) == MailSettings(account.id)
    wanted = MailSettings(account.id, ("acme.co.za", "ops@acme.co.za"), SubjectMode.WINSMS,
                          TooLongMode.TRUNCATE, True, True, False, ("--", "Confidential"))
    spool.save_mail_settings(wanted)
    spool.save_mail_settings(wanted)  # an update, not a second row
    assert spool.get_mail_settings(account.id) == wanted


def test_sender_lookup_prefers_the_address_over_the_domain(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    domain, person = make_account(), make_account()
    spool.save_mail_settings(MailSettings(domain.id, ("acme.co.za",)))
    spool.save_mail_settings(MailSettings(person.id, ("Boss@Acme.co.za",)))
    found = spool.mail_sender_account("boss@acme.co.za")
    assert found is not None and found.id == person.id
    other = spool.mail_sender_account("ops@ACME.co.za")
    assert other is not None and other.id == domain.id
    assert spool.mail_sender_account("ops@evil.example") is None


def test_a_sender_names_one_account_only(spool: SqlSpool,
                                         make_account: Callable[..., Account]) -> None:
    first, second = make_account(), make_account()
    spool.save_mail_settings(MailSettings(first.id, ("acme.co.za",)))
    with pytest.raises(Conflict):
        spool.save_mail_settings(MailSettings(second.id, ("acme.co.za",)))


def test_mail_is_found_from_its_sms_and_receipts_queue_with_notices(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    account = make_account()
    mail = _mail(account)
    spool.create_mail(mail)
    sms = new_message(account, batch_id=mail.id)
    spool.accept([sms])
    assert spool.mail_for_message(sms.id) == mail
    item = NewOutboxItem(str(ULID()), "email", account.id, mail.reply_to)
    spool.finish_mail(mail.id, ["+27831234567: bad"], [(item, NoticeKind.RECEIPT)], NOW)
    stored = spool.get_mail(mail.id)
    assert stored is not None and stored.refused == ("+27831234567: bad",)
    found = spool.mail_notice(item.id)
    assert found is not None and found[1] is NoticeKind.RECEIPT
    outbox = spool.get_outbox(item.id)
    assert outbox is not None and outbox.status is OutboxStatus.PENDING


def test_final_receipt_is_due_once_every_sms_is_final(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    account = make_account()
    mail = _mail(account)
    spool.create_mail(mail)
    spool.accept([new_message(account, batch_id=mail.id)])
    assert spool.final_receipts_due(10, LATER) == []
    claim = spool.claim("n1", 10, 60, NOW)
    spool.record(claim.token, [Transition(m.id, Status.DELIVERED) for m in claim.messages],
                 NOW + timedelta(seconds=1))
    # The first receipt is not queued yet: the final one waits for it, or for the grace.
    assert spool.final_receipts_due(10, EARLIER) == []
    assert [m.id for m in spool.final_receipts_due(10, LATER)] == [mail.id]
    receipt = NewOutboxItem(str(ULID()), "email", account.id, mail.reply_to)
    spool.finish_mail(mail.id, [], [(receipt, NoticeKind.RECEIPT)], NOW)
    assert [m.id for m in spool.final_receipts_due(10, EARLIER)] == [mail.id]
    item = NewOutboxItem(str(ULID()), "email", account.id, mail.reply_to)
    assert spool.queue_final_receipt(mail.id, item, NOW) is True
    assert spool.queue_final_receipt(mail.id, item, NOW) is False
    assert spool.final_receipts_due(10, LATER) == []


def test_final_receipt_of_a_mail_without_first_receipts_does_not_wait(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    account = make_account()
    mail = _mail(account, receipts=False)
    spool.create_mail(mail)
    spool.accept([new_message(account, batch_id=mail.id)])
    claim = spool.claim("n1", 10, 60, NOW)
    spool.record(claim.token, [Transition(m.id, Status.DELIVERED) for m in claim.messages],
                 NOW + timedelta(seconds=1))
    assert [m.id for m in spool.final_receipts_due(10, EARLIER)] == [mail.id]


def test_receipts_missing_finds_mails_with_sms_but_no_receipt_once(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    account = make_account()
    lost, finished, empty = _mail(account), _mail(account), _mail(account)
    quiet = _mail(account, receipts=False)
    for mail in (lost, finished, empty, quiet):
        spool.create_mail(mail)
    spool.accept([new_message(account, batch_id=m.id) for m in (lost, finished, quiet)])
    done = NewOutboxItem(str(ULID()), "email", account.id, finished.reply_to)
    spool.finish_mail(finished.id, [], [(done, NoticeKind.RECEIPT)], NOW)
    every = ("0" * 26, "Z" * 26)
    assert [m.id for m in spool.mail_receipts_missing(*every, 10)] == [lost.id]
    assert spool.mail_receipts_missing(lost.id[:10] + "Z" * 16, "Z" * 26, 10) == []
    item = NewOutboxItem(str(ULID()), "email", account.id, lost.reply_to)
    assert spool.queue_mail_receipt(lost.id, item, NOW) is True
    assert spool.queue_mail_receipt(lost.id, item, NOW) is False
    assert spool.mail_receipts_missing(*every, 10) == []


def test_a_mail_whose_intake_failed_is_discarded_but_never_one_with_sms(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    account = make_account()
    unused, used = _mail(account), _mail(account)
    spool.create_mails([unused, used])
    spool.accept([new_message(account, batch_id=used.id)])
    assert spool.discard_mail(unused.id) and spool.get_mail(unused.id) is None
    assert not spool.discard_mail(used.id) and spool.get_mail(used.id) == used
