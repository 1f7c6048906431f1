"""Email-to-SMS against the real listener on port 0 with real smtplib clients: who may
send, which recipients are taken, how mails become SMS text, and that 250 means the SMS
are committed."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.smtp.listener import MailHandler
from hub.accounts import hash_password
from hub.errors import TemporaryFailure
from hub.mail import MailSettings, SubjectMode, TooLongMode
from hub.model import Message, Source, Status
from spool.tables import mails
from tests.factories import sa_minute_ahead
from tests.hubthread import HubThread

DOMAIN = "sms.example.co.za"
SENDER = "ops@acme.co.za"
PASSWORD = "correct horse battery"


def smtp_section(**extra: Any) -> dict[str, Any]:
    return {"enabled": True, "port": 0, "domains": [DOMAIN],
            "clickatell_addresses": [f"sms@{DOMAIN}"], "max_message_bytes": 64_000,
            "max_recipients": 5, **extra}


@pytest.fixture
def mail_hub(make_hub: Callable[..., HubThread],
             tls_files: dict[str, str]) -> Callable[..., HubThread]:
    """A hub with the listener on, and account acme allowing ops@acme.co.za."""

    def make(settings: dict[str, Any] | None = None, **smtp: Any) -> HubThread:
        hub = make_hub(smtp=smtp_section(**tls_files, **smtp))
        hub.account("acme")
        account = hub.spool.get_account("acme")
        hub.spool.set_password_hash("acme", hash_password(PASSWORD))
        hub.spool.save_mail_settings(MailSettings(account.id, (SENDER,), **(settings or {})))
        return hub

    return make


@pytest.fixture
def hub(mail_hub: Callable[..., HubThread]) -> HubThread:
    return mail_hub()


def connect(hub: HubThread) -> smtplib.SMTP:
    assert hub.hub.smtp_port is not None
    client = smtplib.SMTP("127.0.0.1", hub.hub.smtp_port, timeout=10)
    client.ehlo("client.example")
    return client


def mail(text: str = "Server down", *, to: str = f"27821234567@{DOMAIN}",
         subject: str = "Alert") -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SENDER, to, subject
    message["Message-ID"] = "<alert-1@acme.co.za>"
    message.set_content(text)
    return message


def send(client: smtplib.SMTP, message: EmailMessage | bytes, rcpts: list[str],
         sender: str = SENDER) -> tuple[int, str]:
    """MAIL, RCPT each, DATA; the DATA reply (RCPT refusals are the caller's check)."""
    code, reply = client.mail(sender)
    assert code == 250, reply
    for rcpt in rcpts:
        client.rcpt(rcpt)
    raw = message if isinstance(message, bytes) else message.as_bytes(policy=SMTP_POLICY)
    code, reply = client.data(raw)
    return code, reply.decode()


def queued(hub: HubThread, reply: str) -> list[Message]:
    """The SMS of the mail a 250 reply names ("queued as <mail id>")."""
    mail_id = reply.split("queued as ")[1].split(maxsplit=1)[0]
    return hub.spool.batch_messages(mail_id, "", 1000)


def test_handler_defines_the_hooks_aiosmtpd_looks_up_by_name() -> None:
    for hook in ("handle_MAIL", "handle_RCPT", "handle_DATA", "auth_PLAIN", "auth_LOGIN"):
        assert callable(getattr(MailHandler, hook))


def test_plain_mail_from_an_allowed_sender_is_committed_before_250(hub: HubThread) -> None:
    with connect(hub) as client:
        code, reply = send(client, mail("Server down.\n\nRegards,\nOps"),
                           [f'"+27 82-123.4567"@{DOMAIN}'])
    assert code == 250
    [sms] = queued(hub, reply)  # committed: readable as soon as 250 arrived
    assert (sms.recipient, sms.text, sms.source) == ("+27821234567", "Server down.",
                                                       Source.SMTP)


def test_several_recipients_with_one_invalid_get_their_own_answers(hub: HubThread) -> None:
    with connect(hub) as client:
        client.mail(SENDER)
        assert client.rcpt(f"0821234567@{DOMAIN}")[0] == 250
        code, why = client.rcpt(f"12ab@{DOMAIN}")
        assert code == 550 and b"not a phone number" in why
        assert client.rcpt(f"27831234567@{DOMAIN}")[0] == 250
        code, reply = client.data(mail().as_bytes(policy=SMTP_POLICY))
    assert code == 250
    assert sorted(m.recipient for m in queued(hub, reply.decode())) == [
        "+27821234567", "+27831234567"]


def test_auth_is_refused_before_starttls_and_works_after(
        hub: HubThread, client_tls: ssl.SSLContext) -> None:
    with connect(hub) as client:
        assert not client.has_extn("auth")
        code, why = client.docmd("AUTH", "PLAIN AGFjbWUAeHh4")
        assert code == 538 and b"Encryption required" in why
        client.starttls(context=client_tls)
        client.ehlo("client.example")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("acme", "wrong password")
        client.login("acme", PASSWORD)
        code, reply = send(client, mail(), [f"27821234567@{DOMAIN}"],
                           sender="anyone@elsewhere.example")
    assert code == 250 and len(queued(hub, reply)) == 1


def test_plaintext_auth_on_loopback_only_when_configured(
        mail_hub: Callable[..., HubThread]) -> None:
    hub = mail_hub(allow_plaintext_auth_on_loopback=True)
    with connect(hub) as client:
        client.login("acme", PASSWORD)
        assert send(client, mail(), [f"27821234567@{DOMAIN}"], sender="x@y.example")[0] == 250


def test_html_only_mail_is_sent_as_text(hub: HubThread) -> None:
    message = mail()
    message.set_content("<html><body><p>Server <b>down</b></p></body></html>", subtype="html")
    with connect(hub) as client:
        _code, reply = send(client, message, [f"27821234567@{DOMAIN}"])
    assert [m.text for m in queued(hub, reply)] == ["Server down"]


def test_multipart_alternative_prefers_the_plain_part(hub: HubThread) -> None:
    message = mail("plain version")
    message.add_alternative("<p>html version</p>", subtype="html")
    message.add_attachment(b"%PDF", maintype="application", subtype="pdf",
                           filename="report.pdf")
    with connect(hub) as client:
        _code, reply = send(client, message, [f"27821234567@{DOMAIN}"])
    assert [m.text for m in queued(hub, reply)] == ["plain version"]


@pytest.mark.parametrize("cte", ["base64", "quoted-printable"])
def test_encoded_non_ascii_bodies_are_decoded(hub: HubThread, cte: str) -> None:
    message = mail()
    message.set_content("Café déjà vu — ✓ done", charset="utf-8", cte=cte)
    raw = message.as_bytes(policy=SMTP_POLICY)
    assert cte.encode() in raw and "Café".encode() not in raw
    with connect(hub) as client:
        _code, reply = send(client, raw, [f"27821234567@{DOMAIN}"])
    assert [m.text for m in queued(hub, reply)] == ["Café déjà vu — ✓ done"]


def test_rfc2047_subject_is_prepended_when_the_account_says_so(
        mail_hub: Callable[..., HubThread]) -> None:
    hub = mail_hub({"subject_mode": SubjectMode.PREPEND})
    message = mail("body", subject=str(Header("Größe", "utf-8").encode()))
    with connect(hub) as client:
        _code, reply = send(client, message, [f"27821234567@{DOMAIN}"])
    assert [m.text for m in queued(hub, reply)] == ["Größe: body"]


def test_winsms_subject_schedules_the_sms_in_south_african_time(
        mail_hub: Callable[..., HubThread]) -> None:
    hub = mail_hub({"subject_mode": SubjectMode.WINSMS})
    at = sa_minute_ahead()
    with connect(hub) as client:
        _code, reply = send(client, mail(subject=f"{at:%Y%m%d%H%M}"), [f"27821234567@{DOMAIN}"])
    [sms] = queued(hub, reply)
    assert sms.status is Status.SCHEDULED
    assert sms.send_at == at and sms.send_at.utcoffset() == timedelta(0)  # stored in UTC


def test_too_long_text_is_refused_or_truncated_per_account(
        mail_hub: Callable[..., HubThread]) -> None:
    long = "word " * 300
    refusing = mail_hub()
    with connect(refusing) as client:
        code, reply = send(client, mail(long), [f"27821234567@{DOMAIN}"])
    assert code == 550 and "segments" in reply
    truncating = mail_hub({"too_long": TooLongMode.TRUNCATE})
    with connect(truncating) as client:
        code, reply = send(client, mail(long), [f"27821234567@{DOMAIN}"])
    [sms] = queued(truncating, reply)
    assert sms.segments == 6 and long.startswith(sms.text)


def test_clickatell_body_sends_to_each_to_line(hub: HubThread) -> None:
    body = ("api_id:1234\nuser:bob\npassword:secret\nreply:noc@acme.co.za\n"
            "text:Server down\nto:27821234567\nto:0831234567\n")
    with connect(hub) as client:
        _code, reply = send(client, mail(body, to=f"sms@{DOMAIN}"), [f"sms@{DOMAIN}"])
    sms = queued(hub, reply)
    assert sorted(m.recipient for m in sms) == ["+27821234567", "+27831234567"]
    assert {m.text for m in sms} == {"Server down"}
    mail_id = reply.split("queued as ")[1].split()[0]
    stored = hub.spool.get_mail(mail_id)
    assert stored is not None and stored.reply_to == "noc@acme.co.za"


def test_clickatell_template_rows_each_get_their_own_text(hub: HubThread) -> None:
    body = ("api_id:1234\ntext:Hi #field1#, pay #field2#\ndelimiter:;\n"
            "csv:27821234567;Fred;R15\ncsv:0831234567;Ann;R2\n")
    with connect(hub) as client:
        code, reply = send(client, mail(body, to=f"sms@{DOMAIN}"), [f"sms@{DOMAIN}"])
    assert code == 250
    assert sorted((m.recipient, m.text) for m in queued(hub, reply)) == [
        ("+27821234567", "Hi Fred, pay R15"), ("+27831234567", "Hi Ann, pay R2")]


@pytest.fixture
def no_tls_hub(make_hub: Callable[..., HubThread]) -> Iterator[HubThread]:
    hub = make_hub(smtp=smtp_section())
    yield hub


def test_without_tls_an_unknown_sender_gets_550(no_tls_hub: HubThread) -> None:
    with connect(no_tls_hub) as client:
        code, why = client.mail("mallory@evil.example")
    assert code == 550 and b"may not send SMS" in why


def test_a_mail_answered_451_leaves_no_record_and_its_retry_counts_once(
        hub: HubThread, monkeypatch: pytest.MonkeyPatch) -> None:
    accept = hub.spool.accept
    failures = iter([TemporaryFailure("the spool is busy")])

    def flaky(*args: Any) -> Any:
        for failure in failures:
            raise failure
        return accept(*args)

    monkeypatch.setattr(hub.spool, "accept", flaky)
    with connect(hub) as client:
        code, _ = send(client, mail(), [f"27821234567@{DOMAIN}"])
        assert code == 451
        code, reply = send(client, mail(), [f"27821234567@{DOMAIN}"])  # the retry
    assert code == 250 and len(queued(hub, reply)) == 1
    with hub.spool.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(mails)).scalar() == 1
