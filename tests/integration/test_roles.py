"""A node split into an ingress and a dispatch hub on one SQLite spool (issue #16), with
an HTTP upstream carrier: the dispatch side sends, and the provider's delivery-report and
reply callbacks are committed by the ingress side, whose carrier was never started."""

from __future__ import annotations

from pathlib import Path

import httpx

from hub.config import load
from hub.model import Status
from tests.hubthread import HubThread
from tests.integration.test_http_upstream import (  # noqa: F401 - smsportal: a fixture
    SECRET,
    START,
    callback,
    send,
    settled,
    smsportal,
    smsportal_table,
)
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
