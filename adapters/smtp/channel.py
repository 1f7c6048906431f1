"""The "email" OutboxChannel: composes the mail the hub sends about email-to-SMS
(receipts, final delivery receipts, replies from handsets), threaded to the original
mail, and sends it through the relay."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol
from zoneinfo import ZoneInfo

from adapters.smtp.relay import Relay
from hub import logs
from hub.clock import utcnow
from hub.errors import Rejected
from hub.mail import Mail, NoticeKind
from hub.model import Inbound, Message, OutboxItem
from hub.ports import BatchStore, InboundStore, MailStore
from hub.sections import SmtpSection
from hub.spoolcall import SpoolThreads

log = logging.getLogger(__name__)

EMAIL_CHANNEL = "email"
MAX_LISTED = 1000  # recipients listed one by one in a receipt; the rest are counted


class MailOutStore(MailStore, InboundStore, BatchStore, Protocol):
    """What composing a receipt or a reply mail reads: the mail, the inbound message,
    and the mail's SMS (stored like a batch's)."""


class EmailChannel:
    """The "email" OutboxChannel: composes each item's mail and sends it."""

    name = EMAIL_CHANNEL

    def __init__(self, section: SmtpSection, runner: SpoolThreads[MailOutStore], relay: Relay,
                 timezone: str) -> None:
        self._section = section
        self._runner = runner
        self._relay = relay
        self._zone = ZoneInfo(timezone)

    async def deliver(self, item: OutboxItem) -> None:
        message = await self.compose(item)
        await self._relay.send(message)
        log.info("mailed %s to the sender of a mail", item.id, extra={"action": "mail-out"})

    async def compose(self, item: OutboxItem) -> EmailMessage:
        spool = self._runner.spool
        if item.inbound_id is not None:
            inbound = await self._runner.call(spool.get_inbound, item.inbound_id)
            mail = None if item.message_id is None else await self._runner.call(
                spool.mail_for_message, item.message_id)
            if inbound is None or mail is None:
                raise Rejected("unknown_reply", "the reply or its mail is no longer stored")
            return self._reply(item, mail, inbound)
        found = await self._runner.call(spool.mail_notice, item.id)
        if found is None:
            raise Rejected("unknown_notice", "no mail is recorded for this outbox item")
        mail, kind = found
        listed = await self._runner.call(_listed, self._runner, mail.id)
        return self._receipt(item, mail, kind, listed)

    def _reply(self, item: OutboxItem, mail: Mail, inbound: Inbound) -> EmailMessage:
        message = self._envelope(item, mail, "Re: " + _strip_re(mail.subject or "your SMS"))
        digits = inbound.sender.lstrip("+")
        # Answering the reply continues the conversation as an SMS to that handset.
        message["Reply-To"] = f"{digits}@{self._section.domains[0]}"
        when = inbound.received_at.astimezone(self._zone)
        message.set_content(
            f"{inbound.text}\n\n-- \nSMS reply from {inbound.sender}, received "
            f"{when:%Y-%m-%d %H:%M} ({self._zone.key}).\n"
            f"Reply to this email to send {inbound.sender} an SMS.\n")
        log.debug("reply from %s", logs.number(inbound.sender), extra={"action": "mail-out"})
        return message

    def _receipt(self, item: OutboxItem, mail: Mail, kind: NoticeKind,
                 listed: tuple[list[Message], int]) -> EmailMessage:
        title = "SMS delivery report" if kind is NoticeKind.FINAL else "SMS receipt"
        message = self._envelope(item, mail, f"{title}: {mail.subject or '(no subject)'}")
        message.set_content(receipt_text(mail, kind, *listed, zone=self._zone))
        return message

    def _envelope(self, item: OutboxItem, mail: Mail, subject: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._section.from_address
        message["To"] = item.address
        message["Subject"] = subject
        message["Date"] = format_datetime(utcnow())
        message["Message-ID"] = make_msgid(idstring=item.id, domain=_domain(
            self._section.from_address))
        message["In-Reply-To"] = mail.message_id
        message["References"] = mail.message_id
        message["Auto-Submitted"] = "auto-replied"  # no autoresponder loops
        return message


def _listed(runner: SpoolThreads[BatchStore], mail_id: str) -> tuple[list[Message], int]:
    """The mail's SMS (the first MAX_LISTED) and how many there are in all."""
    spool = runner.spool
    total = sum(spool.batch_status_counts(mail_id).values())
    return spool.batch_messages(mail_id, "", MAX_LISTED), total


def receipt_text(mail: Mail, kind: NoticeKind, sms: Sequence[Message], total: int,
                 zone: ZoneInfo) -> str:
    received = mail.received_at.astimezone(zone)
    lines = [f"Your mail \"{mail.subject or '(no subject)'}\" of "
             f"{received:%Y-%m-%d %H:%M} ({zone.key}):", ""]
    for m in sms:
        state = m.status.public.value if kind is NoticeKind.FINAL else m.status.value
        error = f" ({m.error.text})" if kind is NoticeKind.FINAL and m.error else ""
        lines.append(f"  {m.recipient}  {state}{error}  id {m.id}")
    if total > len(sms):
        lines.append(f"  ... and {total - len(sms)} more")
    if mail.refused:
        lines += ["", "Not sent:"] + [f"  {line}" for line in mail.refused]
    if mail.attachments and kind is NoticeKind.RECEIPT:
        lines += ["", "Attachments are not sent by SMS; ignored: " + ", ".join(mail.attachments)]
    return "\n".join(lines) + "\n"


def _strip_re(subject: str) -> str:
    while subject[:3].lower() == "re:":
        subject = subject[3:].strip()
    return subject


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "smshub"
