"""Webhook events in the spool, on SQLite and PostgreSQL: queued in the transaction of the
change (one per subscribed, enabled endpoint), claimed in order per message and endpoint,
given up when their endpoint is removed or disabled, replayed with their ids; and
batch.completed when a batch's rows are all read."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from hub.batches import Batch, BatchState
from hub.model import (
    Account,
    DeliveryReport,
    OutboxResult,
    OutboxStatus,
    Status,
    Transition,
    WebhookEndpoint,
)
from spool import SqlSpool
from tests.factories import NOW, make_account, new_message

WEBHOOK = "webhook"


def endpoint(account: Account, events: set[str], n: int = 1) -> WebhookEndpoint:
    return WebhookEndpoint(id=f"01JENDPOINT{n:015d}", account_id=account.id,
                           url=f"https://hooks.example.com/{n}", events=frozenset(events),
                           secret="whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", created_at=NOW)


def submit_and_deliver(spool: SqlSpool, account: Account) -> str:
    message = new_message(account)
    spool.accept([message])
    claim = spool.claim("node", 10, 60, NOW)
    spool.record(claim.token, [Transition(message.id, Status.SUBMITTED, carrier="sim",
                                          carrier_message_id=f"c-{message.id}")], NOW)
    return message.id


def test_a_status_change_queues_one_event_per_subscribed_endpoint(spool: SqlSpool) -> None:
    acme, other = make_account(spool), make_account(spool)
    spool.create_webhook(endpoint(acme, {"message.submitted"}, 1))
    spool.create_webhook(endpoint(acme, {"message.delivered"}, 2))
    spool.create_webhook(endpoint(other, {"message.submitted"}, 3))
    message_id = submit_and_deliver(spool, acme)
    [item] = spool.claim_outbox(WEBHOOK, 10, 60, NOW)
    assert (item.endpoint_id, item.event_type, item.message_id) == (
        endpoint(acme, set(), 1).id, "message.submitted", message_id)
    body = json.loads(item.payload or "")
    assert body["type"] == "message.submitted" and body["data"]["id"] == message_id
    assert body["data"]["status"] == "submitted" and body["data"]["error"] is None


def test_no_endpoint_means_no_event_and_a_disabled_one_gets_none(spool: SqlSpool) -> None:
    acme = make_account(spool)
    submit_and_deliver(spool, acme)
    assert spool.claim_outbox(WEBHOOK, 10, 60, NOW) == []
    hook = spool.create_webhook(endpoint(acme, {"message.submitted"}))
    assert spool.enable_webhook(hook.id, False, "test", NOW)
    submit_and_deliver(spool, acme)
    assert spool.claim_outbox(WEBHOOK, 10, 60, NOW) == []


def test_one_messages_events_are_claimed_in_order(spool: SqlSpool) -> None:
    acme = make_account(spool)
    spool.create_webhook(endpoint(acme, {"message.submitted", "message.failed"}))
    message_id = submit_and_deliver(spool, acme)
    spool.apply_reports([DeliveryReport("sim", f"c-{message_id}", Status.UNDELIVERED,
                                        NOW)], NOW)
    first = spool.claim_outbox(WEBHOOK, 10, 60, NOW)
    assert [i.event_type for i in first] == ["message.submitted"]
    assert spool.claim_outbox(WEBHOOK, 10, 60, NOW) == []  # waits for the first
    retry = OutboxResult(first[0].id, OutboxStatus.PENDING, due_at=NOW + timedelta(hours=1))
    spool.record_outbox(first[0].lease_token or "", [retry], NOW)
    assert spool.claim_outbox(WEBHOOK, 10, 60, NOW) == []  # still owed: order holds
    later = NOW + timedelta(hours=2)
    again = spool.claim_outbox(WEBHOOK, 10, 60, later)
    assert [i.id for i in again] == [first[0].id]
    spool.record_outbox(again[0].lease_token or "",
                        [OutboxResult(again[0].id, OutboxStatus.SENT)], later)
    [failed] = spool.claim_outbox(WEBHOOK, 10, 60, later)
    assert failed.event_type == "message.failed"


def test_removing_an_endpoint_gives_up_what_it_was_owed_and_replay_sends_it_again(
    spool: SqlSpool,
) -> None:
    acme = make_account(spool)
    hook = spool.create_webhook(endpoint(acme, {"message.submitted"}))
    submit_and_deliver(spool, acme)
    [item] = spool.claim_outbox(WEBHOOK, 10, 60, NOW)
    spool.record_outbox(item.lease_token or "", [OutboxResult(item.id, OutboxStatus.SENT)],
                        NOW)
    assert spool.replay_webhook(hook.id, NOW - timedelta(minutes=1), None, NOW) == 1
    [again] = spool.claim_outbox(WEBHOOK, 10, 60, NOW)
    assert again.id == item.id and again.attempts == 1
    second = spool.create_webhook(endpoint(acme, {"message.submitted"}, 2))
    submit_and_deliver(spool, acme)
    assert spool.remove_webhook(second.id, NOW)
    assert spool.get_webhook(second.id) is None
    owed = spool.webhook_deliveries(second.id, 10)
    assert [d["status"] for d in owed] == ["failed"]
    assert owed[0]["error_code"] == "endpoint_removed"


def test_a_batch_whose_rows_are_all_read_is_completed_once(spool: SqlSpool) -> None:
    acme = make_account(spool)
    spool.create_webhook(endpoint(acme, {"batch.completed"}))
    batch = Batch(id="01JBATCH000000000000000000", account_id=acme.id, file_name="a.csv",
                  sha256="0" * 64, format="native", received_at=NOW,
                  state=BatchState.PROCESSING)
    spool.create_batch(batch)
    spool.update_batch(replace(batch, rows=5))  # still processing: nothing yet
    assert spool.claim_outbox(WEBHOOK, 10, 60, NOW) == []
    done = replace(batch, rows=5, accepted=4, rejected=1, state=BatchState.ACCEPTED,
                   finished_at=NOW)
    spool.update_batch(done)
    spool.update_batch(replace(done, state=BatchState.FINAL))  # later changes: no event
    [item] = spool.claim_outbox(WEBHOOK, 10, 60, NOW)
    data = json.loads(item.payload or "")["data"]
    assert (data["id"], data["state"], data["accepted"], data["rejected"]) == (
        batch.id, "accepted", 4, 1)


def test_a_node_takes_back_its_own_leases_when_it_starts_again(spool: SqlSpool) -> None:
    acme = make_account(spool)
    spool.create_webhook(endpoint(acme, {"message.submitted"}))
    submit_and_deliver(spool, acme)
    [held] = spool.claim_outbox(WEBHOOK, 10, 600, NOW, "node-a")
    assert spool.claim_outbox(WEBHOOK, 10, 600, NOW, "node-b") == []
    assert spool.release_outbox("node-b", NOW) == 0  # not its lease
    assert spool.release_outbox("node-a", NOW) == 1
    [again] = spool.claim_outbox(WEBHOOK, 10, 600, NOW, "node-b")
    assert again.id == held.id


def test_a_deleted_accounts_endpoints_are_disabled_with_what_they_were_owed(
    spool: SqlSpool,
) -> None:
    acme = make_account(spool)
    hook = spool.create_webhook(endpoint(acme, {"message.submitted", "message.delivered"}))
    message_id = submit_and_deliver(spool, acme)
    assert spool.delete_account(acme.name, False, NOW).deleted
    found = spool.get_webhook(hook.id)
    assert found is not None and not found.enabled
    assert found.disabled_reason == "the account was deleted"
    assert [d["error_code"] for d in spool.webhook_deliveries(hook.id, 10)] == [
        "endpoint_disabled"]
    # Its messages still settle; their events go nowhere.
    spool.apply_reports([DeliveryReport("sim", f"c-{message_id}", Status.DELIVERED, NOW)],
                        NOW)
    assert spool.claim_outbox(WEBHOOK, 10, 60, NOW) == []
