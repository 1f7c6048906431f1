"""Mail loops (RFC 3834) against the real listener with smtplib: bounces and
auto-replies from an allowed sender are answered 250 and dropped (no SMS, no receipt),
and every mail the hub sends carries `Auto-Submitted: auto-replied`."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from decimal import Decimal

import pytest

from adapters.carriers.simulator import SimulatorCarrier, SimulatorRules
from hub.mail import MailSettings
from tests.hubthread import HubThread
from tests.relay import Sink

DOMAIN = "sms.example.co.za"
SENDER = "ops@acme.co.za"
TO = f"27821234567@{DOMAIN}"


@pytest.fixture
def loop_hub(make_hub: Callable[..., HubThread], sink: tuple[Sink, int]) -> HubThread:
    """Account acme allows all of acme.co.za and wants a receipt for every mail."""
    hub = make_hub(
        smtp={"enabled": True, "port": 0, "domains": [DOMAIN], "relay_host": "127.0.0.1",
              "relay_port": sink[1], "relay_security": "none",
              "from_address": f"smshub@{DOMAIN}"},
        outbox={"poll_interval": 0.05, "retry_base": 0.05, "retry_cap": 0.1},
    )
    hub.account("acme")
    account = hub.spool.get_account("acme")
    hub.spool.save_mail_settings(MailSettings(account.id, ("acme.co.za",), receipts=True))
    return hub


def raw_mail(message_id: str, headers: str = "", content_type: str = "text/plain") -> bytes:
    body = ("--b\r\nContent-Type: text/plain\r\n\r\nServer down\r\n--b--\r\n"
            if content_type.startswith("multipart/") else "Server down\r\n")
    return (f"From: {SENDER}\r\nTo: {TO}\r\nSubject: Alert\r\nMessage-ID: {message_id}\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n{headers}\r\n"
            f"{body}").encode()


def send(hub: HubThread, raw: bytes, sender: str = SENDER) -> tuple[int, str]:
    assert hub.hub.smtp_port is not None
    with smtplib.SMTP("127.0.0.1", hub.hub.smtp_port, timeout=10) as client:
        client.ehlo("mx.acme.co.za")
        code, reply = client.mail(sender)
        assert code == 250, reply
        assert client.rcpt(TO)[0] == 250
        code, reply = client.data(raw)
    return code, reply.decode()


REPORT = "multipart/report; report-type=delivery-status; boundary=b"
AUTOMATIC = {
    "null sender": ("", "", "text/plain"),
    "MAILER-DAEMON envelope": ("MAILER-DAEMON@acme.co.za", "", "text/plain"),
    "MAILER-DAEMON header": (SENDER, "Sender: Mail Delivery <MAILER-DAEMON@acme.co.za>\r\n",
                             "text/plain"),
    "delivery report": (SENDER, "", REPORT),
    "auto-replied": (SENDER, "Auto-Submitted: auto-replied\r\n", "text/plain"),
    "auto-generated": (SENDER, "Auto-Submitted: auto-generated; owner=x\r\n", "text/plain"),
    "precedence bulk": (SENDER, "Precedence: bulk\r\n", "text/plain"),
    "precedence junk": (SENDER, "Precedence: junk\r\n", "text/plain"),
    "precedence list": (SENDER, "Precedence: list\r\n", "text/plain"),
    "precedence auto_reply": (SENDER, "Precedence: auto_reply\r\n", "text/plain"),
    "x-autoreply": (SENDER, "X-Autoreply: yes\r\n", "text/plain"),
    "x-autorespond": (SENDER, "X-Autorespond: on vacation\r\n", "text/plain"),
}


@pytest.mark.parametrize("case", list(AUTOMATIC))
def test_automatic_mail_is_accepted_and_dropped_without_sms_or_receipt(
    loop_hub: HubThread, sink: tuple[Sink, int], case: str,
) -> None:
    sender, headers, content_type = AUTOMATIC[case]
    code, reply = send(loop_hub, raw_mail("<auto@acme.co.za>", headers, content_type), sender)
    assert code == 250 and "dropped" in reply and "RFC 3834" in reply
    assert loop_hub.spool.get_account("acme").balance == Decimal("100")  # no SMS
    # A person's mail after it: the first receipt the relay gets is that mail's.
    code, reply = send(loop_hub, raw_mail("<person@acme.co.za>"))
    assert code == 250 and "queued as" in reply
    receipt = sink[0].next()
    assert receipt["In-Reply-To"] == "<person@acme.co.za>"
    assert receipt["Auto-Submitted"] == "auto-replied"
    assert loop_hub.spool.get_account("acme").balance < Decimal("100")


def test_auto_submitted_no_is_a_person_s_mail(loop_hub: HubThread) -> None:
    code, reply = send(loop_hub, raw_mail("<p@acme.co.za>", "Auto-Submitted: no\r\n"))
    assert code == 250 and "queued as" in reply


def test_a_dropped_bounce_is_logged_once_without_the_address(
    loop_hub: HubThread, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="adapters.smtp.listener")
    send(loop_hub, raw_mail("<auto@acme.co.za>", "X-Autoreply: yes\r\n"))
    [line] = [r.getMessage() for r in caplog.records if "automatic" in r.getMessage()]
    assert "acme.co.za" in line and "X-Autoreply" in line and SENDER not in line


def test_a_reply_mailed_back_says_it_is_auto_replied(
    loop_hub: HubThread, sink: tuple[Sink, int],
) -> None:
    send(loop_hub, raw_mail("<question@acme.co.za>"))
    assert sink[0].next()["Auto-Submitted"] == "auto-replied"  # the receipt
    carrier = SimulatorCarrier(SimulatorRules())
    assert loop_hub.hub.services is not None
    loop_hub.run(carrier.start(loop_hub.hub.services.dispatcher))
    loop_hub.run(carrier.inject_inbound("+27821234567", "31337", "YES"))
    reply = sink[0].next()
    assert reply["Subject"] == "Re: Alert" and reply["Auto-Submitted"] == "auto-replied"
