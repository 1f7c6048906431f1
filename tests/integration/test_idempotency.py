"""`Idempotency-Key` on the JSON API's POSTs (P12), on a real server driven by httpx:
twice, ten in parallel, a changed body, another account's key, a key still running, a
request the spool could not take, and every POST route; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from hub.clock import utcnow
from hub.idempotency import KeyRequest, fingerprint
from tests.hubthread import HubThread

MakeHub = Callable[..., HubThread]
MESSAGE = {"to": "0821234567", "text": "Once only"}


@pytest.fixture
def hub(make_hub: MakeHub, spool_url: str) -> HubThread:
    return make_hub(spool={"url": spool_url})


def post(hub: HubThread, key: str, idem: str | None, body: object,
         path: str = "/v1/messages") -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if idem is not None:
        headers["Idempotency-Key"] = idem
    return httpx.post(f"{hub.url}{path}", content=json.dumps(body), headers=headers,
                      timeout=20)


def messages(hub: HubThread, account: str = "acme") -> int:
    found = hub.spool.list_messages(_all(hub, account))
    return len(found)


def _all(hub: HubThread, account: str) -> object:
    from hub.ports import MessageFilter  # noqa: PLC0415
    return MessageFilter(hub.spool.get_account(account).id, limit=1000)


def test_a_repeat_replays_the_first_answer_and_sends_nothing_again(hub: HubThread) -> None:
    key = hub.account("acme", credits="10", price="0.25")
    first = post(hub, key, "order-1", MESSAGE)
    assert first.status_code == 202 and "idempotent-replayed" not in first.headers
    again = post(hub, key, "order-1", MESSAGE)
    assert again.status_code == 202 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert messages(hub) == 1 and hub.spool.get_account("acme").balance == Decimal("9.75")


def test_a_refusal_is_replayed_too_and_a_batch_answer_byte_for_byte(hub: HubThread) -> None:
    key = hub.account("acme", credits="10", price="0.25")
    refused = post(hub, key, "bad-1", {"to": "12", "text": "x"})
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_number"
    replayed = post(hub, key, "bad-1", {"to": "12", "text": "x"})
    assert (replayed.status_code, replayed.content) == (422, refused.content)
    assert replayed.headers["content-type"] == "application/problem+json"
    batch = {"messages": [MESSAGE, {"to": "12", "text": "x"}, MESSAGE | {"text": "two"}]}
    first = post(hub, key, "batch-1", batch)
    assert first.status_code == 202 and first.json()["accepted"] == 2
    assert post(hub, key, "batch-1", batch).content == first.content
    assert messages(hub) == 2


def test_ten_parallel_requests_with_one_key_send_one_message(hub: HubThread) -> None:
    key = hub.account("acme", credits="10", price="0.25")
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: post(hub, key, "burst", MESSAGE), range(10)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {202, 409} and 202 in statuses, statuses
    assert len({a.json()["id"] for a in answers if a.status_code == 202}) == 1
    for conflict in (a for a in answers if a.status_code == 409):
        assert conflict.json()["code"] == "idempotency_key_in_use"
    assert messages(hub) == 1 and hub.spool.get_account("acme").balance == Decimal("9.75")


def test_a_key_reused_for_another_body_gets_422_and_another_account_has_its_own(
    hub: HubThread,
) -> None:
    acme = hub.account("acme")
    beta = hub.account("beta")
    assert post(hub, acme, "k", MESSAGE).status_code == 202
    changed = post(hub, acme, "k", MESSAGE | {"text": "Changed"})
    assert changed.status_code == 422 and changed.json()["code"] == "idempotency_key_reused"
    other_route = post(hub, acme, "k", {"number": "0821234567"}, "/v1/optouts")
    assert other_route.status_code == 422
    theirs = post(hub, beta, "k", MESSAGE)
    assert theirs.status_code == 202 and "idempotent-replayed" not in theirs.headers
    assert messages(hub, "acme") == 1 and messages(hub, "beta") == 1


def test_a_key_still_running_gets_409_and_is_free_again_once_its_holder_is_gone(
    hub: HubThread,
) -> None:
    key = hub.account("acme")
    account_id = hub.spool.get_account("acme").id
    body = json.dumps(MESSAGE).encode()
    held = hub.spool.claim_key(KeyRequest(
        account_id, "slow", fingerprint("POST", "/v1/messages", "application/json", body),
        utcnow(), timedelta(days=1)))
    running = post(hub, key, "slow", MESSAGE)
    assert running.status_code == 409 and running.json()["code"] == "idempotency_key_in_use"
    hub.spool.release_key(account_id, "slow", held.token)  # e.g. its request failed for now
    assert post(hub, key, "slow", MESSAGE).status_code == 202
    assert messages(hub) == 1


def test_a_bad_key_is_refused(hub: HubThread) -> None:
    key = hub.account("acme")
    for bad in (b"", b"x" * 256, "naïve".encode()):
        r = httpx.post(f"{hub.url}/v1/messages", json=MESSAGE, timeout=10,
                       headers={"Authorization": f"Bearer {key}".encode(),
                                "Idempotency-Key": bad})
        assert r.status_code == 400 and r.json()["code"] == "invalid_idempotency_key"
    assert messages(hub) == 0


def test_every_post_route_replays(make_hub: MakeHub, spool_url: str) -> None:
    hub = make_hub(spool={"url": spool_url}, webhooks={"allow_networks": ["127.0.0.1/32"]})
    key = hub.account("acme")
    scheduled = {"to": "0821234567", "text": "later",
                 "send_at": (utcnow() + timedelta(hours=1)).isoformat()}
    message_id = post(hub, key, None, scheduled).json()["id"]
    routes: list[tuple[str, object]] = [
        ("/v1/batches", {"messages": [MESSAGE]}),
        (f"/v1/messages/{message_id}/cancel", {}),
        ("/v1/optouts", {"number": "0821112222", "reason": "asked"}),
        ("/v1/webhooks", {"url": "http://127.0.0.1:9/sms", "events": ["message.delivered"]}),
    ]
    for path, body in routes:
        first = post(hub, key, f"key-{path}", body, path)
        assert first.status_code < 300, (path, first.text)
        again = post(hub, key, f"key-{path}", body, path)
        assert (again.status_code, again.content) == (first.status_code, first.content), path
        assert again.headers["idempotent-replayed"] == "true"
        # A 201 names what it made: the replay names the same.
        assert again.headers.get("location") == first.headers.get("location"), path
    assert first.status_code == 201 and first.headers["location"].startswith("/v1/webhooks/")
    assert len(hub.spool.list_batches(None, 10)) == 1
    assert len(hub.spool.list_webhooks(None)) == 1


def test_a_multipart_upload_repeated_with_another_boundary_is_the_same_request(
    hub: HubThread,
) -> None:
    key = hub.account("acme")
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "upload-1"}
    files = {"file": ("list.csv", b"to,text\n0821234567,Hi\n", "text/csv")}
    first = httpx.post(f"{hub.url}/v1/batches", files=files, headers=headers, timeout=10)
    again = httpx.post(f"{hub.url}/v1/batches", files=files, headers=headers, timeout=10)
    assert first.status_code == 202 and again.content == first.content
    assert len(hub.spool.list_batches(None, 10)) == 1


def test_kept_answers_are_purged_after_the_window(hub: HubThread) -> None:
    key = hub.account("acme")
    assert post(hub, key, "old", MESSAGE).status_code == 202
    assert hub.spool.purge_keys(utcnow() + timedelta(hours=23)) == 0
    assert hub.spool.purge_keys(utcnow() + timedelta(days=1, seconds=1)) == 1
    fresh = post(hub, key, "old", MESSAGE)  # a new request now: its client_ref-less twin
    assert fresh.status_code == 202 and "idempotent-replayed" not in fresh.headers
