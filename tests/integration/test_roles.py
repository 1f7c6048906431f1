"""A node split into an ingress and a dispatch hub on one SQLite spool (issue #16), with
an HTTP upstream carrier: the dispatch side sends, and the provider's delivery-report and
reply callbacks are committed by the ingress side, whose carrier was never started. Each
listener has its own switch: ingress processes of one node running HTTP alone and SMTP
alone, beside a dispatch process with none."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

from hub.config import load
from hub.mail import MailSettings
from hub.model import Status
from hub.ports import MessageFilter
from tests.hubthread import HubThread
from tests.integration.conftest import test_config as hub_config
from tests.integration.test_http_upstream import (  # noqa: F401 - smsportal: a fixture
    SECRET,
    START,
    callback,
    send,
    settled,
    smsportal,
    smsportal_table,
)
from tests.polling import eventually
from tests.providers import SmsPortal


def test_ingress_node_commits_carrier_callbacks_that_the_dispatch_node_awaits(
        tmp_path: Path, hubs: list[HubThread], smsportal: SmsPortal) -> None:  # noqa: F811
    path = tmp_path / "hub.toml"
    path.write_text(START.format(data=tmp_path / "data", carrier="portal")
                    + smsportal_table(smsportal))
    split: dict[str, HubThread] = {}
    for role in ("dispatch", "ingress"):
        split[role] = HubThread(load(path, env={"SMSHUB_HUB__ROLE": role})).start()
        hubs.append(split[role])
    ingress, dispatch = split["ingress"], split["dispatch"]
    assert ingress.hub.services is not None
    portal = ingress.hub.services.dispatcher.carriers["portal"]
    assert not getattr(portal, "available")  # never started: sends nothing
    # The dispatch side has no API, only health and the callbacks.
    assert httpx.get(f"{dispatch.url}/v1/messages").status_code == 404
    [mid] = send(ingress, {"to": "082 123 4567", "text": "Coming?", "from": "ACME"})
    settled(ingress, mid, Status.SUBMITTED)
    assert len(smsportal.requests) == 1  # sent once, by the dispatch side
    r = callback(ingress, "GET", f"/carriers/portal/mo/{SECRET}", params={
        "IncomingID": "555", "Phonenumber": "27821234567", "IncomingData": "Yes please",
        "SentID": "1", "EventID": "12345678901"})
    assert r.status_code == 200, r.text
    account = ingress.spool.get_account("acme")
    [reply] = ingress.spool.list_inbound(account.id, None, 10)
    assert reply.text == "Yes please" and reply.in_reply_to == mid
    r = callback(ingress, "POST", f"/carriers/portal/dlr/{SECRET}", json={
        "Status": "DELIVRD", "EventId": 12345678901, "Msisdn": "27821234567"})
    assert r.status_code == 200, r.text
    delivered = ingress.spool.get_message(mid)
    assert delivered is not None and delivered.status is Status.DELIVERED


def test_an_ingress_process_runs_only_the_listeners_switched_on(
        tmp_path: Path, hubs: list[HubThread]) -> None:
    data = tmp_path / "data"  # one node: one data directory, one dispatching process

    def process(role: str, **sections: dict[str, Any]) -> HubThread:
        hub = HubThread(hub_config(data, hub={"role": role}, **sections)).start()
        hubs.append(hub)
        return hub

    smtp = {"port": 0, "domains": ["sms.localhost"]}
    dispatch = process("dispatch", http={"enabled": False})
    web = process("ingress", smtp={**smtp, "enabled": False})
    mail = process("ingress", http={"enabled": False}, smtp={**smtp, "enabled": True})
    assert dispatch.hub.http_port is None and dispatch.hub.smtp_port is None
    assert web.hub.http_port is not None and web.hub.smtp_port is None
    assert mail.hub.http_port is None and mail.hub.smtp_port is not None
    key = web.account("acme", credits="10")
    account = web.spool.get_account("acme")
    assert account is not None
    web.spool.save_mail_settings(MailSettings(account.id, ("ops@acme.co.za",)))
    posted = httpx.post(f"{web.url}/v1/messages", headers={"Authorization": f"Bearer {key}"},
                        json={"to": "0821234567", "text": "by HTTP"}, timeout=30)
    assert posted.status_code == 202, posted.text
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = (
        "ops@acme.co.za", "0821234568@sms.localhost", "x")
    message.set_content("by mail")
    with smtplib.SMTP("127.0.0.1", mail.hub.smtp_port, timeout=30) as client:
        client.send_message(message)
    # The dispatch process sends what either listener took.
    everything = MessageFilter(account_id=account.id)
    eventually(lambda: {m.text: m.status for m in web.spool.list_messages(everything)}
               == {"by HTTP": Status.DELIVERED, "by mail": Status.DELIVERED},
               30, 0.05, "both delivered")
