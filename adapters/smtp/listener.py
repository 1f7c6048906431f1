"""The email-to-SMS listener: aiosmtpd on the hub's event loop. RCPT takes only
<number>@<our domain> (never a relay), senders must be allow-listed or authenticated,
and DATA answers 250 only once every SMS of the mail is committed through intake."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, make_msgid
from ipaddress import ip_address
from typing import ParamSpec, TypeVar

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from adapters.smtp import loops, replies
from adapters.smtp import text as mail_text
from adapters.smtp.auth import SmtpAuth
from adapters.smtp.channel import EMAIL_CHANNEL
from adapters.smtp.senders import MailLookups
from adapters.smtp.session import CappedSMTP, ConnectionCaps
from adapters.vendors import clickatell
from hub import logs, numbers
from hub.accounts import Credentials
from hub.clock import Clock, utcnow
from hub.errors import SPOOL_FULL, HubError, Rejected, TemporaryFailure
from hub.faultlog import FaultLog
from hub.groupcommit import GroupCommitter
from hub.ids import new_id
from hub.intake import Intake
from hub.mail import Mail, MailSettings, NoticeKind
from hub.model import Account, NewOutboxItem, Outcome, Refused, Source, Submission
from hub.ports import MailStore
from hub.sections import SmtpSection
from hub.spoolcall import SpoolThreads

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class MailRules:
    """What the listener needs besides its [smtp] section."""

    region: str = "ZA"
    timezone: str = "Africa/Johannesburg"
    max_segments: int = 6


@dataclass(frozen=True, slots=True)
class Recipient:
    """An accepted RCPT: a number (E.164), or a Clickatell-format address."""

    address: str
    number: str | None  # None: the body names the numbers (Clickatell)


class MailHandler:
    """aiosmtpd handler: its hooks are found by name (handle_MAIL, handle_RCPT,
    handle_DATA, auth_PLAIN, auth_LOGIN); each returned string is the SMTP reply."""

    def __init__(self, section: SmtpSection, rules: MailRules, intake: Intake,
                 credentials: Credentials, runner: SpoolThreads[MailStore],
                 clock: Clock = utcnow) -> None:
        self._section = section
        self._rules = rules
        self._intake = intake
        self._auth = SmtpAuth(section, credentials)
        self._lookups = MailLookups(runner, section.settings_cache_seconds)
        self._runner = runner
        # Concurrent mails' records share one transaction, as their SMS do in intake.
        self._new_mails: GroupCommitter[Mail, None] = GroupCommitter(
            self._store_mails, 200, runner.start)
        self._clock = clock
        self._domains = {d.lower() for d in section.domains}
        self._clickatell = {a.lower() for a in section.clickatell_addresses}
        # Who is sending in each open transaction; aiosmtpd makes a new Envelope each.
        self._senders: weakref.WeakKeyDictionary[Envelope, Account] = (
            weakref.WeakKeyDictionary())
        # Said once per fault: senders retry every mail, each would be a line.
        self._faults = FaultLog(log, "SMTP mail not taken", "smtp-data")

    # --- authentication ----------------------------------------------------------------

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._auth.plain(server, args)

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._auth.login(server, args)

    # --- the envelope --------------------------------------------------------------------

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        account = session.auth_data if session.authenticated else None
        if not isinstance(account, Account):
            try:
                account = await self._lookups.sender_account(address)
            except TemporaryFailure as exc:
                return self._unavailable(exc)
        if account is None and not loops.is_null(address):
            return self._unauthorised(address, server)
        if account is not None:
            self._senders[envelope] = account
        # A null sender (a bounce) is taken without an account: DATA drops it (loops).
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return replies.OK

    def _unavailable(self, exc: TemporaryFailure) -> str:
        self._faults.failed(str(exc))
        return replies.spool_unavailable(exc.reason, exc.reason == SPOOL_FULL)

    def _unauthorised(self, address: str, server: SMTP) -> str:
        log.info("SMTP sender refused", extra={"action": "smtp-sender"})
        if self._auth_possible(server):
            return replies.auth_required(address)
        return replies.sender_not_allowed(address)

    def _auth_possible(self, server: SMTP) -> bool:
        return bool(self._section.certfile) or self.plaintext_auth_allowed()

    def plaintext_auth_allowed(self) -> bool:
        return self._section.allow_plaintext_auth_on_loopback and _is_loopback(
            self._section.host)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= self._section.max_recipients:
            return replies.too_many_recipients(self._section.max_recipients)
        try:
            recipient = self.recipient(address)
        except Rejected as exc:
            return replies.bad_recipient(address, exc.reason)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        if recipient.number is not None:
            log.debug("RCPT %s", logs.number(recipient.number), extra={"action": "smtp-rcpt"})
        return replies.OK

    def recipient(self, address: str) -> Recipient:
        """Parse an RCPT address or say why it is refused; never relays elsewhere."""
        local, at, domain = address.rpartition("@")
        if address.lower() in self._clickatell:
            return Recipient(address, None)
        if not at or domain.lower() not in self._domains:
            raise Rejected("relay_denied",
                           "relaying denied: this server only takes <number>@"
                           + self._section.domains[0])
        try:
            # A local part with spaces arrives quoted: "+27 82 123 4567"@domain.
            number = numbers.normalise(local.strip('"'), self._rules.region)
        except Rejected as exc:
            raise Rejected("invalid_number", f"not a phone number: {exc.reason}") from None
        return Recipient(address, number)

    async def handle_exception(self, error: Exception) -> str:
        """aiosmtpd's hook for an error no other hook caught: logged, and answered without
        its words (aiosmtpd's own reply would be `500 Error: (<exception>) <text>`)."""
        log.error("SMTP session error", exc_info=error, extra={"action": "smtp"})
        return replies.TEMPORARY

    # --- the mail ----------------------------------------------------------------------------

    async def handle_DATA(self, server: SMTP, session: Session,
                          envelope: Envelope) -> str:
        account = self._senders.get(envelope)
        if envelope.mail_from is None or not envelope.rcpt_tos:
            return replies.NEED_MAIL_AND_RCPT
        try:
            raw = envelope.original_content or b""
            message = await _off_loop(len(raw), mail_text.parse, raw)
            automatic = loops.by_envelope(envelope.mail_from) or loops.by_headers(message)
            if automatic is not None or account is None:
                return _dropped(automatic or "null sender", envelope.mail_from)
            return await self._accept(account, envelope, message, len(raw))
        except TemporaryFailure as exc:
            return self._unavailable(exc)
        except mail_text.TooComplex as exc:
            return replies.too_complex(exc.reason)
        except HubError as exc:
            return replies.refused_mail(str(exc))

    async def _accept(self, account: Account, envelope: Envelope,
                      message: EmailMessage, size: int) -> str:
        settings = await self._lookups.settings(account.id)
        recipients = [self.recipient(a) for a in envelope.rcpt_tos]
        draft = await _off_loop(size, self._draft, message, recipients, settings)
        mail = self._mail(account, envelope, message, draft, settings)
        # The mail row first, then intake with the mail's id as batch id: each SMS is
        # linked to its mail in the same commit as the SMS itself.
        await self._new_mails.submit([mail])
        try:
            outcomes = await self._intake.submit(account, Source.SMTP, draft.submissions,
                                                 batch_id=mail.id)
        except HubError:
            await self._discard(mail.id)
            raise
        refused = _refused_lines(draft, outcomes)
        await self._finish(mail, refused, len(outcomes))
        return _answer(mail.id, outcomes, refused)

    async def _discard(self, mail_id: str) -> None:
        """Intake failed: nothing of the mail is committed, its sender is answered 451
        (sends it again: a new record) or 550. Its record goes, so the mail counts once;
        if the spool cannot even do that, the record stays, unused and without SMS."""
        try:
            await self._runner.call(self._runner.spool.discard_mail, mail_id)
        except TemporaryFailure:
            log.warning("mail %s: not taken, and its unused record not removed", mail_id,
                        extra={"action": "smtp-data"})

    def _store_mails(self, records: list[Mail]) -> list[None]:
        self._runner.spool.create_mails(records)  # on the committer's spool thread
        return [None] * len(records)

    async def _finish(self, mail: Mail, refused: list[str], total: int) -> None:
        """Queue the receipt (always when some recipients were refused, as a bounce
        would be). The SMS are committed already: a failure here loses only it."""
        wants = mail.receipts or (refused and len(refused) < total)
        notices = [(NewOutboxItem(new_id(), EMAIL_CHANNEL, mail.account_id, mail.reply_to),
                    NoticeKind.RECEIPT)] if wants else []
        if not refused and not notices:
            return  # nothing to record: the common case costs no third transaction
        try:
            await self._runner.call(self._runner.spool.finish_mail, mail.id, refused, notices,
                                    self._clock())
        except TemporaryFailure:
            log.warning("mail %s: SMS committed, receipt not queued", mail.id,
                        extra={"action": "smtp-data"})

    def _draft(self, message: EmailMessage, recipients: Sequence[Recipient],
               settings: MailSettings) -> Draft:
        numbers_ = [r.number for r in recipients if r.number is not None]
        draft = Draft([], [], [], ())
        if numbers_:
            found = mail_text.sms_text_for(message, settings)
            subject = mail_text.header(message, "Subject")
            text, send_at = mail_text.apply_subject(found.text, subject, settings.subject_mode,
                                                    self._rules.timezone)
            text = mail_text.fit(text, self._rules.max_segments, settings.too_long)
            draft.attachments = found.attachments
            for number in numbers_:
                draft.add(number, Submission(to=number, text=text, send_at=send_at))
        if len(numbers_) < len(recipients):
            self._clickatell_draft(message, settings, draft)
        return draft

    def _clickatell_draft(self, message: EmailMessage, settings: MailSettings,
                          draft: Draft) -> None:
        body = clickatell.parse_body(mail_text.body(message).text)
        text = mail_text.fit(body.text, self._rules.max_segments, settings.too_long)
        ref = body.client_ref if len(body.to) == 1 and not body.rows else None
        for to in body.to:
            draft.add(to, Submission(to=to, text=text, sender=body.sender, client_ref=ref,
                                     callback=body.callback))
        for to, filled in body.rows:
            draft.add(to, Submission(to=to, text=mail_text.fit(
                filled, self._rules.max_segments, settings.too_long), sender=body.sender,
                callback=body.callback))
        draft.reply_to.extend(body.reply)

    def _mail(self, account: Account, envelope: Envelope, message: EmailMessage,
              draft: Draft, settings: MailSettings) -> Mail:
        sender = envelope.mail_from or ""
        asked = any(mail_text.header(message, h) for h in
                    ("Disposition-Notification-To", "Return-Receipt-To"))
        return Mail(
            id=new_id(), account_id=account.id, sender=sender,
            reply_to=_reply_address(message, draft.reply_to, sender),
            message_id=mail_text.header(message, "Message-ID") or make_msgid(domain="smshub"),
            subject=mail_text.header(message, "Subject"), received_at=self._clock(),
            receipts=settings.receipts,
            final_receipt=settings.final_receipts or (settings.receipts and asked),
            replies=settings.replies, attachments=draft.attachments,
        )


@dataclass
class Draft:
    """The submissions a mail makes, with the recipient each came from."""

    labels: list[str]
    submissions: list[Submission]
    reply_to: list[str]
    attachments: tuple[str, ...]

    def add(self, label: str, submission: Submission) -> None:
        self.labels.append(label)
        self.submissions.append(submission)


# Below this many bytes a mail is read on the event loop: the hop to a worker thread
# would cost more. Above it, parsing and finding the SMS text (up to about half a second
# for the most complex mail the limits let through) never stall the other protocols.
_INLINE_BYTES = 32_768


async def _off_loop(size: int, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    if size <= _INLINE_BYTES:
        return fn(*args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)


def _dropped(reason: str, mail_from: str) -> str:
    """Automatic mail is taken and dropped (RFC 3834): 250, so its sender does not
    retry or bounce it, and no SMS, no receipt. Logged with the sender's domain only."""
    domain = "<>" if loops.is_null(mail_from) else mail_from.rpartition("@")[2]
    log.info("SMTP automatic mail from %s dropped: %s", domain, reason,
             extra={"action": "smtp-automatic"})
    return replies.automatic_dropped(reason)


def _refused_lines(draft: Draft, outcomes: Sequence[Outcome]) -> list[str]:
    return [f"{label}: {o.reason}" for label, o in zip(draft.labels, outcomes, strict=True)
            if isinstance(o, Refused)]


def _answer(mail_id: str, outcomes: Sequence[Outcome], refused: Sequence[str]) -> str:
    if not outcomes:
        return replies.NO_SMS_IN_MAIL
    accepted = len(outcomes) - len(refused)
    if accepted == 0:
        return replies.no_sms_sent("; ".join(_masked(r) for r in refused))
    also = f", {len(refused)} refused (see the receipt)" if refused else ""
    return replies.queued(mail_id, accepted, also)


def _masked(line: str) -> str:
    """Refusal lines name numbers; the SMTP reply may be logged by relays: mask them."""
    label, sep, reason = line.partition(": ")
    return f"{numbers.mask(label)}{sep}{reason}" if label.startswith("+") else line


def _reply_address(message: EmailMessage, clickatell: Sequence[str], sender: str) -> str:
    if clickatell:
        return clickatell[0]
    for name in ("Reply-To", "From"):
        found = [a for _, a in getaddresses([mail_text.header(message, name)]) if "@" in a]
        if found:
            return found[0]
    return sender


def _is_loopback(host: str) -> bool:
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class SmtpListener:
    """Starts and stops the SMTP server on the running event loop."""

    def __init__(self, section: SmtpSection, handler: MailHandler) -> None:
        self._section = section
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self.port: int | None = None

    async def start(self) -> None:
        s = self._section
        tls = _tls_context(s.certfile, s.keyfile) if s.certfile else None
        loop = asyncio.get_running_loop()

        plaintext_auth = self._handler.plaintext_auth_allowed()
        caps = ConnectionCaps(s.max_connections, s.max_connections_per_ip)

        def factory() -> SMTP:
            session = CappedSMTP(self._handler, hostname=s.hostname or None, loop=loop,
                                 data_size_limit=s.max_message_bytes, enable_SMTPUTF8=True,
                                 tls_context=tls, auth_require_tls=not plaintext_auth,
                                 require_starttls=s.require_tls,
                                 ident="smshub ESMTP", caps=caps)
            self._sessions.add(session)
            return session

        self._server = await loop.create_server(factory, s.host, s.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("SMTP listening on %s:%d", s.host, self.port, extra={"action": "listen"})

    async def stop(self) -> None:
        """Stop listening and close the sessions still open: a client in the middle of a
        mail has had no 250, so its server sends the mail again later."""
        if self._server is None:
            return
        self._server.close()
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        # Let each session see its connection lost and finish its handler task.
        for _ in range(3):
            await asyncio.sleep(0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._server.wait_closed()


def _tls_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    return context
