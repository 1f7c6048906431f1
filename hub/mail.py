"""Email-to-SMS records: an account's mail settings and the record of one accepted mail
(its sender and Message-ID, for receipts and threaded replies). Pure data; the spool
stores them, adapters/smtp creates them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

DEFAULT_CUT_MARKERS = ("--", "This email and any attachments", "This e-mail and any attachments")


class SubjectMode(StrEnum):
    IGNORE = "ignore"  # the subject is a reference only (WinSMS default)
    PREPEND = "prepend"  # "subject: body"
    WINSMS = "winsms"  # a YYYYMMDDHHMM subject schedules the message in the hub's zone


class TooLongMode(StrEnum):
    REJECT = "reject"
    TRUNCATE = "truncate"


class NoticeKind(StrEnum):
    """What an email the hub sends about a mail is."""

    RECEIPT = "receipt"  # each recipient's outcome, right after the mail is accepted
    FINAL = "final"  # each recipient's delivery result, once all are final
    REPLY = "reply"  # a handset's answer to an SMS sent by mail


@dataclass(frozen=True, slots=True)
class MailSettings:
    """How one account's mails become SMS; absent means the defaults."""

    account_id: int
    allowed_senders: tuple[str, ...] = ()  # "ops@acme.co.za" or "acme.co.za"
    subject_mode: SubjectMode = SubjectMode.IGNORE
    too_long: TooLongMode = TooLongMode.REJECT
    receipts: bool = False
    final_receipts: bool = False  # also when the sender asks (Disposition-Notification-To)
    replies: bool = True
    cut_markers: tuple[str, ...] = DEFAULT_CUT_MARKERS


@dataclass(frozen=True, slots=True)
class Mail:
    """One accepted mail. Its id is the `batch_id` of every SMS made from it, so the
    link from an SMS to its mail is committed together with the SMS itself."""

    id: str
    account_id: int
    sender: str  # the envelope sender
    reply_to: str  # where receipts and replies go (Reply-To, Clickatell reply:, sender)
    message_id: str  # the mail's Message-ID header, for threading
    subject: str
    received_at: datetime
    receipts: bool = False
    final_receipt: bool = False
    replies: bool = True
    attachments: tuple[str, ...] = ()  # names of ignored attachments
    refused: tuple[str, ...] = ()  # "number: reason" lines for recipients intake refused
    final_sent_at: datetime | None = None
