"""Signed webhooks on a real hub, to a real receiver on 127.0.0.1: endpoints managed
through /v1/webhooks and /v1/hooks, events verified with the Standard Webhooks reference
library, in order per message, retried (500, Retry-After, timeouts), given up on 410
(which disables the endpoint), redirects never followed, secrets rotated with an overlap,
replayed with the same ids; and every address of the hub's own networks refused."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from hub.clock import utcnow
from hub.errors import TemporaryFailure
from hub.model import InboundMessage
from tests.hubthread import HubThread
from tests.polling import eventually
from tests.receiver import Hit, Receiver, Script, verified

MakeHub = Callable[..., HubThread]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"

FAST = {
    "allow_networks": ["127.0.0.1/32"], "retry_base": 0.1, "retry_cap": 0.3,
    "poll_interval": 0.05, "timeout": 1.0,
}


@pytest.fixture
def hub(make_hub: MakeHub) -> HubThread:
    return make_hub(webhooks=FAST, outbox={"poll_interval": 0.05},
                    simulator={"report_delay": 0.05, "undelivered_suffixes": ["13"]})


@pytest.fixture
def client(hub: HubThread) -> Iterator[httpx.Client]:
    key = hub.account("acme", credits="10")
    with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {key}"}) as c:
        yield c


def subscribe(client: httpx.Client, url: str, events: list[str] | None = None) -> dict[str, str]:
    r = client.post("/v1/webhooks", json={"url": url, **({"events": events} if events else {})})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v1/webhooks/{r.json()['id']}"
    created: dict[str, str] = r.json()
    assert created["secret"].startswith("whsec_")
    return created


def at_least(receiver: Receiver, path: str, count: int, timeout: float,
             what: str) -> list[Hit]:
    def enough() -> list[Hit] | None:
        hits = receiver.at(path)
        return hits if len(hits) >= count else None

    return eventually(enough, timeout, 0.05, what)


def _all_sent(client: httpx.Client, endpoint_id: str) -> list[dict[str, Any]]:
    def sent() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = client.get(
            f"/v1/webhooks/{endpoint_id}/deliveries").json()["deliveries"]
        return found if found and {d["status"] for d in found} == {"sent"} else None

    return eventually(sent, 10, 0.05, "every delivery recorded as sent")


def send(client: httpx.Client, to: str = "082 123 4567") -> str:
    r = client.post("/v1/messages", json={"to": to, "text": "Hello"})
    assert r.status_code == 202, r.text
    message_id: str = r.json()["id"]
    return message_id


def test_events_are_signed_in_order_and_verifiable_with_the_reference_library(
    client: httpx.Client, receiver: Receiver
) -> None:
    endpoint = subscribe(client, receiver.url("/hook"))
    message_id = send(client)
    failed_id = send(client, "082 123 4513")  # the simulator reports it undelivered
    hits = at_least(receiver, "/hook", 4, 10, "four events")
    events = [verified(h, endpoint["secret"]) for h in hits]
    by_message: dict[str, list[str]] = {}
    for event in events:
        by_message.setdefault(event["data"]["id"], []).append(event["type"])
    assert by_message == {message_id: ["message.submitted", "message.delivered"],
                          failed_id: ["message.submitted", "message.failed"]}
    delivered = next(e for e in events if e["type"] == "message.delivered")
    assert delivered["data"]["to"] == "+27821234567"
    assert delivered["data"]["state"] == "delivered" and "text" not in delivered["data"]
    failed = next(e for e in events if e["type"] == "message.failed")
    assert failed["data"]["status"] == "undelivered" and failed["data"]["error"]["code"]
    # Each delivery has its own id, stable for the receiver to drop duplicates by.
    assert len({h.headers["webhook-id"] for h in hits}) == 4
    assert all(h.headers["content-type"] == "application/json" for h in hits)


def test_only_subscribed_events_are_sent(client: httpx.Client, receiver: Receiver) -> None:
    subscribe(client, receiver.url("/final"), ["message.delivered"])
    message_id = send(client)
    hit = eventually(lambda: receiver.at("/final"), 10, 0.05, "the delivered event")[0]
    assert hit.event["type"] == "message.delivered" and hit.event["data"]["id"] == message_id
    time.sleep(0.3)
    assert len(receiver.at("/final")) == 1


def test_a_500_is_retried_and_429_waits_for_its_retry_after(
    client: httpx.Client, receiver: Receiver
) -> None:
    receiver.scripts["/flaky"] = Script(statuses=[500, 500, 204])
    receiver.scripts["/busy"] = Script(statuses=[429, 204], headers={"Retry-After": "1"})
    subscribe(client, receiver.url("/flaky"), ["message.submitted"])
    subscribe(client, receiver.url("/busy"), ["message.submitted"])
    send(client)
    flaky = at_least(receiver, "/flaky", 3, 10, "three tries")
    assert len({h.headers["webhook-id"] for h in flaky}) == 1  # one event, tried again
    busy = at_least(receiver, "/busy", 2, 10, "the retry after 429")
    first, second = (int(h.headers["webhook-timestamp"]) for h in busy)
    assert second - first >= 1  # the receiver's Retry-After, not our 0.1 s backoff


def test_410_disables_the_endpoint_and_redirects_are_not_followed(
    client: httpx.Client, receiver: Receiver
) -> None:
    receiver.scripts["/gone"] = Script(statuses=[410])
    receiver.scripts["/moved"] = Script(statuses=[302], headers={
        "Location": receiver.url("/elsewhere")})
    gone = subscribe(client, receiver.url("/gone"), ["message.submitted"])
    subscribe(client, receiver.url("/moved"), ["message.submitted"])
    send(client)
    eventually(lambda: not client.get(f"/v1/webhooks/{gone['id']}").json()["enabled"], 10,
               0.05, "the endpoint disabled")
    shown = client.get(f"/v1/webhooks/{gone['id']}").json()
    assert "410" in shown["disabled_reason"] and "secret" not in shown
    eventually(lambda: len(receiver.at("/moved")) >= 2, 10, 0.05, "the redirect retried")
    assert receiver.at("/elsewhere") == []
    send(client)
    time.sleep(0.3)
    assert len(receiver.at("/gone")) == 1  # nothing more for a disabled endpoint


def test_a_receiver_that_never_answers_in_time_is_retried(
    client: httpx.Client, receiver: Receiver
) -> None:
    receiver.scripts["/slow"] = Script(statuses=[204], delay=1.5)
    subscribe(client, receiver.url("/slow"), ["message.submitted"])
    send(client)
    hits = at_least(receiver, "/slow", 2, 15, "a second try after the timeout")
    assert hits[0].headers["webhook-id"] == hits[1].headers["webhook-id"]


def test_a_rotated_secret_signs_beside_the_old_one_and_replay_resends_the_same_ids(
    client: httpx.Client, receiver: Receiver
) -> None:
    endpoint = subscribe(client, receiver.url("/rot"), ["message.submitted"])
    send(client)
    first = eventually(lambda: receiver.at("/rot"), 10, 0.05, "the first event")[0]
    rotated = client.post(f"/v1/webhooks/{endpoint['id']}/rotate").json()
    assert rotated["secret"] != endpoint["secret"] and rotated["previous_secret_valid_until"]
    send(client)
    second = at_least(receiver, "/rot", 2, 10, "the second event")[1]
    verified(second, rotated["secret"])
    verified(second, endpoint["secret"])  # both verify during the overlap
    r = client.post(f"/v1/webhooks/{endpoint['id']}/replay", json={})
    assert r.status_code == 202 and r.json() == {"queued": 2}
    replayed = at_least(receiver, "/rot", 4, 10, "both replayed")[2:]
    assert ({h.headers["webhook-id"] for h in replayed}
            == {first.headers["webhook-id"], second.headers["webhook-id"]})
    # The receiver has them a moment before the hub records them sent.
    deliveries = _all_sent(client, endpoint["id"])
    assert len(deliveries) == 2


@pytest.mark.parametrize("url", [
    "http://127.0.0.2:8080/hook",  # loopback outside the allowed /32
    "http://10.0.0.1/hook", "http://192.168.1.1/hook", "http://172.16.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[::1]/hook", "http://[fe80::1]/hook", "http://[::ffff:10.0.0.1]/hook",
    "http://100.64.0.1/hook", "http://0.0.0.0/hook",
    "http://2130706434/hook", "http://0x7f.0.0.2/hook",  # 127.0.0.2 in disguise
    "http://127.0.0.2.nip.io.invalid/hook",  # a name that does not resolve
    "http://user:pass@example.com/hook", "ftp://example.com/hook", "/relative",
])
def test_endpoints_on_the_hubs_own_networks_are_refused(client: httpx.Client,
                                                        url: str) -> None:
    r = client.post("/v1/webhooks", json={"url": url})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "forbidden_url"
    assert client.get("/v1/webhooks").json() == {"webhooks": []}


def test_unknown_events_and_other_accounts_endpoints_are_refused(
    hub: HubThread, client: httpx.Client, receiver: Receiver
) -> None:
    r = client.post("/v1/webhooks", json={"url": receiver.url("/x"), "events": ["sms.sent"]})
    assert r.status_code == 400 and r.json()["code"] == "invalid_field"
    assert "message.delivered" in r.json()["detail"]
    mine = subscribe(client, receiver.url("/mine"))
    other_key = hub.account("other", credits="10", sender_ids=("OTHER",))
    with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {other_key}"}) as o:
        assert o.get(f"/v1/webhooks/{mine['id']}").status_code == 404
        assert o.delete(f"/v1/webhooks/{mine['id']}").status_code == 404
        assert o.get("/v1/webhooks").json() == {"webhooks": []}
    assert client.delete(f"/v1/webhooks/{mine['id']}").status_code == 204
    assert client.get(f"/v1/webhooks/{mine['id']}").status_code == 404


def test_zapier_and_power_automate_subscriptions(client: httpx.Client,
                                                 receiver: Receiver) -> None:
    zap = client.post("/v1/hooks", json={"target_url": receiver.url("/zap"),
                                         "event": "message.delivered"})
    assert zap.status_code == 201 and zap.json()["id"]
    assert zap.headers["location"] == f"/v1/hooks/{zap.json()['id']}"
    flow = client.post("/v1/hooks", json={"callback_url": receiver.url("/flow"),
                                          "events": ["message.submitted"]})
    assert flow.status_code == 201
    send(client)
    assert eventually(lambda: receiver.at("/zap"), 10, 0.05, "zap")[0].event["type"] == (
        "message.delivered")
    assert eventually(lambda: receiver.at("/flow"), 10, 0.05, "flow")[0].event["type"] == (
        "message.submitted")
    assert client.delete(flow.headers["location"]).status_code == 204
    kinds = {w["kind"] for w in client.get("/v1/webhooks").json()["webhooks"]}
    assert kinds == {"zapier"}


def test_replies_and_opt_outs_are_pushed_with_the_message_they_answer(
    hub: HubThread, client: httpx.Client, receiver: Receiver
) -> None:
    endpoint = subscribe(client, receiver.url("/in"), ["inbound.received", "optout.created"])
    message_id = send(client)
    assert hub.hub.services is not None
    for n, text in enumerate(["Yes please", "STOP"]):
        mo = InboundMessage("simulator", "+27821234567", "31337", text, utcnow(), f"mo{n}")
        hub.run(hub.hub.services.inbound.receive([mo]))
    events = [verified(h, endpoint["secret"])
              for h in at_least(receiver, "/in", 3, 10, "three events")]
    # Two replies are two subjects: their events may arrive in either order.
    inbound = {e["data"]["kind"]: e["data"] for e in events if e["type"] == "inbound.received"}
    assert sorted(inbound) == ["opt_out", "reply"]
    reply, stop = inbound["reply"], inbound["opt_out"]
    assert reply["text"] == "Yes please"
    assert reply["in_reply_to"] == message_id and reply["from"] == "+27821234567"
    optout = next(e["data"] for e in events if e["type"] == "optout.created")
    assert optout["number"] == "+27821234567" and optout["method"] == "reply"
    assert optout["inbound_id"] == stop["id"]


def test_the_verification_example_in_the_docs_verifies_a_real_delivery(
    client: httpx.Client, receiver: Receiver
) -> None:
    code = re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOCS), "exec"), namespace)
    endpoint = subscribe(client, receiver.url("/docs"), ["message.submitted"])
    send(client)
    hit = at_least(receiver, "/docs", 1, 10, "an event")[0]
    event = namespace["verify"](hit.body, hit.headers, endpoint["secret"])
    assert event["type"] == "message.submitted"
    with pytest.raises(WebhookVerificationError):
        namespace["verify"](hit.body.replace(b"submitted", b"delivered"), hit.headers,
                            endpoint["secret"])


def test_an_endpoint_that_hangs_delays_only_its_own_events(
    make_hub: MakeHub, receiver: Receiver
) -> None:
    """Head-of-line: with a small batch, the old loop claimed the hanging endpoint's
    events first and took the next batch only after their timeout (3 s here). The
    receiver's threads sleep past that, but not past the leak check's 5 s."""
    hub = make_hub(webhooks={**FAST, "timeout": 3.0, "batch_size": 4, "per_endpoint": 2},
                   outbox={"poll_interval": 0.05},
                   simulator={"report_delay": 0.05})
    receiver.scripts["/hangs"] = Script(statuses=[204], delay=3.5)
    clients = {}
    for name in ("slowco", "quickco"):
        key = hub.account(name, credits="10")
        clients[name] = httpx.Client(base_url=hub.url,
                                     headers={"Authorization": f"Bearer {key}"})
    try:
        subscribe(clients["slowco"], receiver.url("/hangs"), ["message.submitted"])
        subscribe(clients["quickco"], receiver.url("/quick"), ["message.submitted"])
        for _ in range(8):
            send(clients["slowco"])
        at_least(receiver, "/hangs", 2, 5, "the hanging endpoint's first deliveries")
        started = time.monotonic()
        send(clients["quickco"])
        at_least(receiver, "/quick", 1, 10, "the other account's event")
        assert time.monotonic() - started < 2.0
        # The hanging endpoint never has more than its share in flight.
        assert len(receiver.at("/hangs")) == 2
    finally:
        for c in clients.values():
            c.close()


def test_a_delivery_recorded_after_its_lease_ran_out_is_not_made_again(
    make_hub: MakeHub, receiver: Receiver
) -> None:
    """The spool refuses the outbox's writes (a database away) from before a delivery's
    result is recorded until after its lease (1 s) has run out: the node keeps trying to
    record it and does not claim the item again meanwhile, so the endpoint gets the event
    once. (The result used to be given up at the lease's end, the item claimed and
    delivered again.)"""
    hub = make_hub(webhooks=FAST, outbox={"poll_interval": 0.05, "lease_seconds": 1},
                   simulator={"report_delay": 0.05})
    key = hub.account("acme", credits="10")
    with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {key}"}) as client:
        subscribe(client, receiver.url("/late"), ["message.submitted"])
        spool = hub.spool
        record, away = spool.record_outbox, [True]

        def refusing(*args: Any) -> Any:
            if away[0]:
                raise TemporaryFailure("spool unavailable: the database is away", "test", 1)
            return record(*args)

        spool.record_outbox = refusing  # type: ignore[method-assign]
        send(client)
        at_least(receiver, "/late", 1, 10, "the event, delivered once")
        time.sleep(2.5)  # past the lease, while the result cannot be recorded
        away[0] = False
        (endpoint,) = client.get("/v1/webhooks").json()["webhooks"]
        _all_sent(client, endpoint["id"])
        time.sleep(0.5)  # a few claims more: nothing is delivered again
    assert len(receiver.at("/late")) == 1
