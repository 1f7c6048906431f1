"""Mail the hub sends about email-to-SMS: receipts, final delivery receipts and replies
from handsets, threaded to the original mail. The "email" OutboxChannel composes them
and sends them through the configured relay; the reply route and the final-receipt
check queue them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol
from zoneinfo import ZoneInfo

import aiosmtplib
from ulid import ULID

from hub.clock import Clock, utcnow
from hub.errors import Rejected, TemporaryFailure
from hub.ids import new_id
from hub.mail import Mail, NoticeKind
from hub.model import Inbound, Message, NewOutboxItem, OutboxItem
from hub.numbers import mask
from hub.ports import BatchStore, InboundStore, MailStore
from hub.sections import SmtpSection
from hub.spoolcall import SpoolRunner
from hub.tasks import cancel_all

log = logging.getLogger(__name__)

EMAIL_CHANNEL = "email"
MAX_LISTED = 1000  # recipients listed one by one in a receipt; the rest are counted
# A mail younger than this may still be between intake and queueing its receipt.
RECEIPT_GRACE = timedelta(minutes=5)
RECEIPT_HORIZON = timedelta(days=7)  # how far back missing receipts are looked for


@dataclass(frozen=True, slots=True)
class Relay:
    """The outgoing SMTP relay; the one place that talks to it."""

    host: str
    port: int
    security: str  # starttls, tls, none
    username: str = ""
    password: str = ""
    timeout: float = 30.0

    @classmethod
    def from_section(cls, s: SmtpSection) -> Relay:
        return cls(s.relay_host, s.relay_port, s.relay_security, s.relay_username,
                   s.relay_password, s.relay_timeout)

    async def send(self, message: EmailMessage) -> None:
        """Send one mail; 5xx is Rejected, anything else that fails is temporary."""
        try:
            await aiosmtplib.send(
                message, hostname=self.host, port=self.port,
                username=self.username or None, password=self.password or None,
                use_tls=self.security == "tls",
                start_tls=self.security == "starttls",
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise _translate(min(r.code for r in exc.recipients),
                             "; ".join(r.message for r in exc.recipients)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _translate(exc.code, exc.message) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(f"relay {self.host}:{self.port}: {exc}") from exc


def _translate(code: int, text: str) -> Exception:
    if 500 <= code < 600:
        return Rejected("relay_rejected", f"the relay refused the mail: {code} {text}")
    return TemporaryFailure(f"the relay answered {code} {text}")


class MailOutStore(MailStore, InboundStore, BatchStore, Protocol):
    """What composing a receipt or a reply mail reads: the mail, the inbound message,
    and the mail's SMS (stored like a batch's)."""


class MailReplyRoute:
    """An InboundRoute: a handset's answer to an SMS sent by mail is mailed back to
    whoever sent that mail (opt-outs never get here: the core filters them)."""

    def __init__(self, runner: SpoolRunner[MailStore]) -> None:
        self._runner = runner

    async def route(self, message: Inbound) -> list[NewOutboxItem]:
        if message.in_reply_to is None:
            return []
        mail = await self._runner.call(self._runner.spool.mail_for_message,
                                       message.in_reply_to)
        if mail is None or not mail.replies:
            return []
        return [NewOutboxItem(new_id(), EMAIL_CHANNEL, mail.account_id, mail.reply_to,
                              inbound_id=message.id, message_id=message.in_reply_to)]


class EmailChannel:
    """The "email" OutboxChannel: composes each item's mail and sends it."""

    name = EMAIL_CHANNEL

    def __init__(self, section: SmtpSection, runner: SpoolRunner[MailOutStore], relay: Relay,
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
        log.debug("reply from %s", mask(inbound.sender), extra={"action": "mail-out"})
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


def _listed(runner: SpoolRunner[BatchStore], mail_id: str) -> tuple[list[Message], int]:
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


class FinalReceipts:
    """Every `interval` seconds: queue the final receipt of mails whose SMS all have a
    final status (like the FTP report files), and the first receipt of mails whose SMS
    were committed but whose receipt never was (the listener stopped in between); the
    outbox sends them."""

    def __init__(self, runner: SpoolRunner[MailStore], interval: float,
                 wake: Callable[[], None] | None = None,
                 clock: Clock = utcnow, receipt_grace: timedelta = RECEIPT_GRACE) -> None:
        self._runner = runner
        self._grace = receipt_grace
        self._interval = interval
        self._clock = clock
        self._wake = wake
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        await cancel_all([self._task])

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except TemporaryFailure as exc:
                log.warning("final receipts: %s", exc, extra={"action": "mail-final"})
            await asyncio.sleep(self._interval)

    async def run_once(self) -> int:
        queued = await self.recover_receipts() + await self._final_receipts()
        if queued and self._wake is not None:
            self._wake()
        return queued

    async def _final_receipts(self) -> int:
        spool = self._runner.spool
        settled = _ulid_floor(self._clock() - self._grace)
        due = await self._runner.call(spool.final_receipts_due, 100, settled)
        for mail in due:
            item = NewOutboxItem(new_id(), EMAIL_CHANNEL, mail.account_id, mail.reply_to)
            await self._runner.call(spool.queue_final_receipt, mail.id, item, self._clock())
        return len(due)

    async def recover_receipts(self) -> int:
        """Queue the receipts a crash between intake and the mail's last step lost.
        Those refused at the time are not known any more: the receipt lists the SMS."""
        spool, now = self._runner.spool, self._clock()
        missing = await self._runner.call(
            spool.mail_receipts_missing, _ulid_floor(now - RECEIPT_HORIZON),
            _ulid_floor(now - self._grace), 100)
        queued = 0
        for mail in missing:
            item = NewOutboxItem(new_id(), EMAIL_CHANNEL, mail.account_id, mail.reply_to)
            queued += await self._runner.call(spool.queue_mail_receipt, mail.id, item, now)
            log.warning("mail %s: receipt queued after a restart", mail.id,
                        extra={"action": "mail-receipt"})
        return queued


def _ulid_floor(when: datetime) -> str:
    """The smallest ULID of that millisecond: mail ids compare as their times."""
    return str(ULID.from_datetime(when))[:10] + "0" * 16
