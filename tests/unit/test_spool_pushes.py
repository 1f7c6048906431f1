"""Delivery-report pushes in the spool, on SQLite and PostgreSQL: a message's callback is
stored at acceptance only when its request asked for one; each status change its mask
(Kannel) or callback value (Clickatell) asks for queues one push, in the transaction of
the change, with the facts its channel formats; the account's XML URL gets the submitted
and final statuses of all its messages; one message's pushes are claimed in order."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import func, select

from hub.model import (
    Account,
    Callback,
    CallbackKind,
    DeliveryReport,
    OutboxResult,
    OutboxStatus,
    Status,
    Transition,
)
from spool import SqlSpool
from spool.tables import message_callbacks
from tests.factories import NOW, make_account, new_message

PUSH = "push"
KANNEL = "https://dlr.example.com/k?type=%d&to=%p"


def send(spool: SqlSpool, account: Account, callback: Callback | None,
         final: Status | None = Status.DELIVERED) -> str:
    """Accept, submit, and (unless None) settle one message."""
    message = replace(new_message(account), callback=callback)
    spool.accept([message])
    claim = spool.claim("node", 10, 60, NOW)
    spool.record(claim.token, [Transition(message.id, Status.SUBMITTED, carrier="smsc",
                                          carrier_message_id=f"c-{message.id}")], NOW)
    if final is not None:
        spool.apply_reports([DeliveryReport("smsc", f"c-{message.id}", final, NOW)], NOW)
    return message.id


def pushes(spool: SqlSpool) -> list[dict[str, object]]:
    """Every push queued, claimed and marked sent round after round (a message's next
    push is claimable once its previous one is settled), in the order claimed."""
    found: list[dict[str, object]] = []
    while items := spool.claim_outbox(PUSH, 100, 60, NOW + timedelta(days=1)):
        spool.record_outbox(items[0].lease_token or "",
                            [OutboxResult(i.id, OutboxStatus.SENT) for i in items], NOW)
        found += [json.loads(i.payload or "") for i in items]
    return found


def callbacks_stored(spool: SqlSpool) -> int:
    with spool.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(message_callbacks))
                   .scalar_one())


def test_only_a_message_that_asks_stores_a_callback_and_without_one_nothing_is_pushed(
        spool: SqlSpool) -> None:
    acme = make_account(spool)
    send(spool, acme, None)
    assert callbacks_stored(spool) == 0
    assert spool.claim_outbox(PUSH, 10, 60, NOW) == []


def test_the_dlr_mask_picks_the_kannel_reports_and_each_carries_its_type(
        spool: SqlSpool) -> None:
    acme = make_account(spool, "kannelco")
    both = send(spool, acme, Callback(CallbackKind.KANNEL, KANNEL, 1 | 8))
    only_failures = send(spool, acme, Callback(CallbackKind.KANNEL, KANNEL, 2),
                         final=Status.DELIVERED)
    found = [(p["id"], p["status"], p["dlr"]) for p in pushes(spool)]
    assert found == [(both, "submitted", 8), (both, "delivered", 1)]
    assert only_failures not in {f[0] for f in found}


def test_a_kannel_push_holds_what_its_url_is_filled_with(spool: SqlSpool) -> None:
    acme = make_account(spool, "facts")
    message_id = send(spool, acme, Callback(CallbackKind.KANNEL, KANNEL, 2),
                      final=Status.UNDELIVERED)
    [push] = pushes(spool)
    assert push == {
        "kind": "kannel", "url": KANNEL, "status": "undelivered", "state": "failed",
        "at": "2025-03-01T12:00:00.000Z", "id": message_id, "account": "facts",
        "to": "+27821234567", "from": "ACME", "client_ref": None, "carrier": "smsc",
        "carrier_ref": f"c-{message_id}", "cost": "0.05", "segments": 1, "api_id": None,
        "dlr": 2, "error": push["error"]}


def test_clickatell_callback_values_and_the_accounts_url(spool: SqlSpool) -> None:
    acme = make_account(spool)
    asked = Callback(CallbackKind.CLICKATELL, None, 2, "3388480")  # final statuses only
    without_url = send(spool, acme, asked)
    assert pushes(spool) == []  # no URL anywhere: nothing to push to
    spool.set_account_push_url(acme.id, CallbackKind.CLICKATELL, "https://c.example/cb", NOW)
    message_id = send(spool, acme, asked, final=Status.UNDELIVERED)
    [push] = pushes(spool)
    assert (push["id"], push["status"], push["url"], push["api_id"]) == (
        message_id, "undelivered", "https://c.example/cb", "3388480")
    assert without_url != message_id


def test_the_accounts_xml_url_gets_submitted_and_final_of_every_message(
        spool: SqlSpool) -> None:
    acme, other = make_account(spool), make_account(spool)
    spool.set_account_push_url(acme.id, CallbackKind.XML, "https://x.example/dr", NOW)
    assert spool.account_push_urls(acme.id) == {CallbackKind.XML: "https://x.example/dr"}
    mine = send(spool, acme, None, final=Status.EXPIRED)
    send(spool, other, None)
    found = [(p["kind"], p["id"], p["status"]) for p in pushes(spool)]
    assert found == [("xml", mine, "submitted"), ("xml", mine, "expired")]
    spool.set_account_push_url(acme.id, CallbackKind.XML, None, NOW)
    assert spool.account_push_urls(acme.id) == {}


def test_one_messages_pushes_are_claimed_in_order(spool: SqlSpool) -> None:
    acme = make_account(spool)
    send(spool, acme, Callback(CallbackKind.KANNEL, KANNEL, 31))
    first = spool.claim_outbox(PUSH, 10, 60, NOW)
    assert [i.event_type for i in first] == ["kannel.submitted"]
    assert spool.claim_outbox(PUSH, 10, 60, NOW) == []  # waits for the first
    spool.record_outbox(first[0].lease_token or "",
                        [OutboxResult(first[0].id, OutboxStatus.SENT)], NOW)
    [second] = spool.claim_outbox(PUSH, 10, 60, NOW)
    assert second.event_type == "kannel.delivered"
