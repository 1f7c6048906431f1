"""Mail going back out: a handset's reply to an SMS sent by mail is mailed, threaded, to
the mail's sender through the relay (an aiosmtpd sink here); receipts list outcomes."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from typing import Any

import pytest

from adapters.carriers.simulator import SimulatorCarrier, SimulatorRules
from adapters.smtp.receipts import FinalReceipts
from hub.errors import TemporaryFailure
from hub.mail import MailSettings
from tests.hubthread import HubThread
from tests.relay import Sink

DOMAIN = "sms.example.co.za"
SENDER = "ops@acme.co.za"


@pytest.fixture
def relay_hub(make_hub: Callable[..., HubThread],
              sink: tuple[Sink, int]) -> Callable[..., HubThread]:
    def make(**settings: Any) -> HubThread:
        hub = make_hub(
            smtp={"enabled": True, "port": 0, "domains": [DOMAIN], "relay_host": "127.0.0.1",
                  "relay_port": sink[1], "relay_security": "none",
                  "from_address": f"smshub@{DOMAIN}", "final_receipt_interval": 0.05},
            outbox={"poll_interval": 0.05, "retry_base": 0.05, "retry_cap": 0.1},
        )
        hub.account("acme")
        account = hub.spool.get_account("acme")
        hub.spool.save_mail_settings(MailSettings(account.id, (SENDER,), **settings))
        return hub

    return make


def send_mail(hub: HubThread, rcpts: list[str], **headers: str) -> str:
    message = EmailMessage()
    message["From"], message["To"] = SENDER, ", ".join(rcpts)
    message["Subject"], message["Message-ID"] = "Outage", "<outage-7@acme.co.za>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Is the site back up? Reply YES or NO.")
    message.add_attachment(b"x", maintype="application", subtype="pdf", filename="a.pdf")
    assert hub.hub.smtp_port is not None
    with smtplib.SMTP("127.0.0.1", hub.hub.smtp_port, timeout=10) as client:
        client.ehlo("acme.co.za")
        client.mail(SENDER)
        for rcpt in rcpts:
            client.rcpt(rcpt)
        code, reply = client.data(message.as_bytes(policy=SMTP_POLICY))
    assert code == 250, reply
    return reply.decode()


def test_a_reply_is_mailed_back_threaded_to_the_original_mail(
        relay_hub: Callable[..., HubThread], sink: tuple[Sink, int]) -> None:
    hub = relay_hub()
    send_mail(hub, [f"27821234567@{DOMAIN}"])
    carrier = SimulatorCarrier(SimulatorRules())
    assert hub.hub.services is not None
    hub.run(carrier.start(hub.hub.services.dispatcher))
    hub.run(carrier.inject_inbound("+27821234567", "31337", "YES, all good"))
    reply = sink[0].next()
    assert reply["To"] == SENDER
    assert reply["In-Reply-To"] == "<outage-7@acme.co.za>"
    assert reply["References"] == "<outage-7@acme.co.za>"
    assert reply["Subject"] == "Re: Outage"
    assert reply["Reply-To"] == f"27821234567@{DOMAIN}"
    body = reply.get_body()
    assert body is not None and "YES, all good" in body.get_content()


def test_an_opt_out_reply_is_not_mailed(relay_hub: Callable[..., HubThread],
                                        sink: tuple[Sink, int]) -> None:
    hub = relay_hub()
    send_mail(hub, [f"27821234567@{DOMAIN}"])
    carrier = SimulatorCarrier(SimulatorRules())
    assert hub.hub.services is not None
    hub.run(carrier.start(hub.hub.services.dispatcher))
    hub.run(carrier.inject_inbound("+27821234567", "31337", "STOP"))
    hub.run(carrier.inject_inbound("+27821234567", "31337", "what?"))
    assert "what?" in sink[0].next().get_body().get_content()  # type: ignore[union-attr]
    assert sink[0].mails.empty()  # the STOP before it was never mailed


def test_receipt_then_final_receipt_list_each_recipient(
        relay_hub: Callable[..., HubThread], sink: tuple[Sink, int]) -> None:
    hub = relay_hub(receipts=True)
    send_mail(hub, [f"27821234567@{DOMAIN}", f"27831234567@{DOMAIN}"],
              Disposition_Notification_To=SENDER)
    receipt = sink[0].next()
    text = receipt.get_body().get_content()  # type: ignore[union-attr]
    assert receipt["Subject"] == "SMS receipt: Outage"
    assert receipt["In-Reply-To"] == "<outage-7@acme.co.za>"
    assert "+27821234567" in text and "+27831234567" in text and "a.pdf" in text
    final = sink[0].next()  # once the simulator's delivery reports are in
    assert final["Subject"] == "SMS delivery report: Outage"
    assert final.get_body().get_content().count("delivered") == 2  # type: ignore[union-attr]


def test_a_receipt_lost_between_intake_and_finish_is_queued_later(
        relay_hub: Callable[..., HubThread], sink: tuple[Sink, int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    hub = relay_hub(receipts=True)

    def crash(*args: Any) -> None:
        raise TemporaryFailure("the node stopped here")

    # The SMS are committed, then the step that queues the receipt never completes.
    monkeypatch.setattr(hub.spool, "finish_mail", crash)
    reply = send_mail(hub, [f"27821234567@{DOMAIN}"])
    mail_id = reply.split("queued as ")[1].split()[0]
    assert hub.hub.services is not None
    runner = hub.hub.services.runner
    default = FinalReceipts(runner, 1.0)
    assert hub.run(default.recover_receipts()) == 0  # too young: may still be finishing
    # The same pass once the mail is older than the grace period (zero here).
    aged = FinalReceipts(runner, 1.0, receipt_grace=timedelta(0))
    assert hub.run(aged.run_once()) == 1
    assert hub.run(aged.run_once()) == 0  # queued once
    hub.hub.services.outbox.wake()
    receipt = sink[0].next()
    assert receipt["Subject"] == "SMS receipt: Outage"
    assert receipt["In-Reply-To"] == "<outage-7@acme.co.za>"
    assert "+27821234567" in receipt.get_body().get_content()  # type: ignore[union-attr]
    assert hub.spool.get_mail(mail_id) is not None
