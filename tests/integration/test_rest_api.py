"""The JSON API on a real uvicorn server, driven by httpx: sending, history, and every
refusal with its specific error and no side effect."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.http.app import ExactPaths
from hub.clock import utcnow
from tests.factories import sa_minute_ahead
from tests.hubthread import HubThread
from tests.polling import eventually

MakeHub = Callable[..., HubThread]


def wait_for_status(client: httpx.Client, message_id: str, status: str,
                    timeout: float = 10) -> dict[str, object]:
    def reached() -> dict[str, object] | None:
        body: dict[str, object] = client.get(f"/v1/messages/{message_id}").json()
        return body if body["status"] == status else None

    return eventually(reached, timeout, 0.05, f"status {status} of {message_id}")


@pytest.fixture
def hub(make_hub: MakeHub) -> HubThread:
    return make_hub(simulator={"report_delay": 0.05, "undelivered_suffixes": ["13"],
                               "rejected_suffixes": ["14"]})


@pytest.fixture
def client(hub: HubThread) -> Iterator[httpx.Client]:
    key = hub.account("acme", credits="10", price="0.25", sender_ids=("ACME",))
    with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {key}"}) as c:
        yield c


def balance(hub: HubThread, name: str = "acme") -> Decimal:
    return hub.spool.get_account(name).balance


def test_posted_message_is_delivered_with_its_full_history(client: httpx.Client) -> None:
    r = client.post("/v1/messages", json={"to": "082 123 4567", "text": "Hello", "from": "ACME"})
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["accepted"] is True and accepted["segments"] == 1
    assert accepted["cost"] == "0.2500" or Decimal(accepted["cost"]) == Decimal("0.25")
    body = wait_for_status(client, accepted["id"], "delivered")
    assert body["status"] == "delivered" and body["state"] == "delivered"
    assert body["to"] == "+27821234567"
    assert [e["status"] for e in body["events"]] == [  # type: ignore[union-attr, index]
        "accepted", "sending", "submitted", "delivered"]
    assert body["carrier"] == "simulator" and body["carrier_message_id"]


def test_undelivered_report_ends_failed_and_keeps_the_charge(
    client: httpx.Client, hub: HubThread
) -> None:
    r = client.post("/v1/messages", json={"to": "+27821234513", "text": "Hi"})
    body = wait_for_status(client, r.json()["id"], "undelivered")
    assert body["state"] == "failed" and body["error"]["code"] == "absent_subscriber"  # type: ignore[index]
    assert balance(hub) == Decimal("9.75")


def test_carrier_rejection_fails_at_once_and_refunds(client: httpx.Client, hub: HubThread) -> None:
    r = client.post("/v1/messages", json={"to": "+27821234514", "text": "Hi"})
    body = wait_for_status(client, r.json()["id"], "rejected")
    assert body["status"] == "rejected" and body["attempts"] == 1
    assert body["error"]["code"] == "invalid_destination"  # type: ignore[index]
    assert balance(hub) == Decimal("10")


def test_batch_answers_each_message_in_order_and_one_bad_number_fails_only_itself(
    client: httpx.Client, hub: HubThread
) -> None:
    r = client.post("/v1/messages", json={"messages": [
        {"to": "0821234567", "text": "one"},
        {"to": "12345", "text": "two"},
        {"to": "0831234567", "text": "three", "client_ref": "r-3"},
    ]})
    assert r.status_code == 202
    body = r.json()
    assert (body["accepted"], body["refused"]) == (2, 1)
    codes = [res.get("error", {}).get("code") for res in body["results"]]
    assert codes == [None, "invalid_number", None]
    assert balance(hub) == Decimal("9.50")


def refused(client: httpx.Client, payload: object, status: int, code: str) -> str:
    r = client.post("/v1/messages", json=payload)
    assert r.status_code == status, r.text
    problem = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert problem["code"] == code and problem["status"] == status
    return str(problem["detail"])


def test_bad_number_is_refused_with_the_reason_and_changes_nothing(
    client: httpx.Client, hub: HubThread
) -> None:
    reason = refused(client, {"to": "12345", "text": "x"}, 422, "invalid_number")
    assert "12345" in reason
    assert balance(hub) == Decimal("10")
    assert sum(hub.spool.totals(utcnow()).by_status.values()) == 0


def test_unknown_sender_id_is_refused(client: httpx.Client, hub: HubThread) -> None:
    reason = refused(client, {"to": "0821234567", "text": "x", "from": "EVIL"}, 422,
                     "sender_not_allowed")
    assert "EVIL" in reason and "ACME" in reason
    assert balance(hub) == Decimal("10")


def test_no_credit_is_refused_with_402_and_the_balance_is_untouched(
    make_hub: MakeHub,
) -> None:
    hub = make_hub()
    key = hub.account("poor", credits="0.10", price="0.25")
    with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {key}"}) as c:
        reason = refused(c, {"to": "0821234567", "text": "x"}, 402, "insufficient_credit")
    assert "0.25" in reason and "0.1" in reason
    assert balance(hub, "poor") == Decimal("0.10")


def test_duplicate_client_reference_returns_the_original_and_charges_once(
    client: httpx.Client, hub: HubThread
) -> None:
    first = client.post("/v1/messages", json={"to": "0821234567", "text": "x",
                                              "client_ref": "inv-1"}).json()
    again = client.post("/v1/messages", json={"to": "0821234567", "text": "x",
                                              "client_ref": "inv-1"})
    assert again.status_code == 202
    assert again.json()["id"] == first["id"] and again.json()["duplicate"] is True
    assert balance(hub) == Decimal("9.75")


def test_oversize_body_gets_413_before_it_is_read(make_hub: MakeHub) -> None:
    hub = make_hub(http={"max_body_bytes": 2048})
    key = hub.account()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with httpx.Client(base_url=hub.url, headers=headers) as c:
        declared = c.post("/v1/messages", content=b"x" * 5000)
        assert declared.status_code == 413
        assert declared.json()["code"] == "body_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
            for _ in range(10):
                yield b" " * 1000

        streamed = c.post("/v1/messages", content=chunks())
        assert streamed.status_code == 413
    assert balance(hub) == Decimal("100")


def test_too_many_messages_in_one_request_gets_413(make_hub: MakeHub) -> None:
    hub = make_hub(http={"max_messages_per_request": 2})
    key = hub.account()
    with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {key}"}) as c:
        refused(c, {"messages": [{"to": "0821234567", "text": "x"}] * 3}, 413,
                "too_many_messages")


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer shk_nope_nope", "Basic abc"])
def test_missing_or_wrong_api_key_gets_401(hub: HubThread, header: str | None) -> None:
    hub.account()
    headers = {"Authorization": header} if header else {}
    r = httpx.post(f"{hub.url}/v1/messages", json={"to": "0821234567", "text": "x"},
                   headers=headers)
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert balance(hub) == Decimal("100")


def test_a_revoked_looking_key_of_the_right_shape_is_refused(
    client: httpx.Client, hub: HubThread
) -> None:
    real = client.headers["Authorization"].removeprefix("Bearer ")
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    r = httpx.post(f"{hub.url}/v1/messages", json={"to": "0821234567", "text": "x"},
                   headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


def test_invalid_json_gets_400(client: httpx.Client) -> None:
    r = client.post("/v1/messages", content=b"{not json",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_json"


def test_missing_field_and_unknown_field_are_named(client: httpx.Client) -> None:
    assert "'text' is required" in refused(client, {"to": "0821234567"}, 422, "invalid_field")
    assert "'colour'" in refused(client, {"to": "0821234567", "text": "x", "colour": 1},
                                 422, "invalid_field")


def test_text_over_the_segment_limit_is_refused(client: httpx.Client) -> None:
    reason = refused(client, {"to": "0821234567", "text": "x" * (153 * 6 + 1)}, 422,
                     "too_long")
    assert "7" in reason and "6" in reason


def test_another_accounts_message_is_not_found(client: httpx.Client, hub: HubThread) -> None:
    mine = client.post("/v1/messages", json={"to": "0821234567", "text": "x"}).json()["id"]
    other = hub.account("other")
    r = httpx.get(f"{hub.url}/v1/messages/{mine}",
                  headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 404


def test_scheduled_message_waits_for_its_time(client: httpx.Client) -> None:
    at = sa_minute_ahead()  # written without an offset: the hub's zone, SAST, is assumed
    r = client.post("/v1/messages", json={"to": "0821234567", "text": "later",
                                          "send_at": f"{at:%Y-%m-%dT%H:%M:%S}"})
    assert r.json()["status"] == "scheduled"
    body = client.get(f"/v1/messages/{r.json()['id']}").json()
    assert datetime.fromisoformat(body["send_at"]) == at


def test_health_readiness_and_metrics(client: httpx.Client) -> None:
    client.post("/v1/messages", json={"to": "0821234567", "text": "x"})
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["schema"] == "current"
    text = client.get("/metrics").text
    assert "# TYPE smshub_messages gauge" in text
    assert 'smshub_accepted_total{source="rest"} 1' in text
    assert "smshub_queue_depth" in text and "smshub_dispatch_rate" in text
    # The spool's writer as this process used it (one process: role all).
    writer = {line.partition("{")[0]: float(line.rpartition(" ")[2])
              for line in text.splitlines() if line.startswith("smshub_spool_writer_")
              and '{process="all"}' in line}
    assert writer["smshub_spool_writer_turns_total"] >= 1, text
    assert writer["smshub_spool_writer_hold_seconds_total"] > 0
    assert "smshub_spool_writer_wait_seconds_total" in writer


async def test_a_crashing_exact_path_endpoint_answers_500_and_the_app_keeps_serving() -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("bug")

    async def fine(request: Request) -> Response:
        return Response("ok")

    routes = [Route("/boom", boom, methods=["POST"]), Route("/fine", fine, methods=["GET"])]
    app = ExactPaths(starlette_app_never_called, routes)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
        r = await c.post("/boom")
        assert r.status_code == 500 and r.json()["code"] == "internal_error"
        assert (await c.get("/fine")).text == "ok"


async def starlette_app_never_called(scope: object, receive: object, send: object) -> None:
    raise AssertionError("exact paths must not reach the router")


@pytest.mark.parametrize("bad", ["\ud800", "caf\udce9", "nul\u0000"])
def test_an_unsendable_text_is_refused_alone_and_fails_nobody_elses_messages(
    spool_url: str, make_hub: MakeHub, bad: str  # the spool outlives the hub: this order
) -> None:
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    hub = make_hub(spool={"url": spool_url})
    acme = hub.account("acme", credits="100")
    beta = hub.account("beta", credits="100")
    # Escaped by json.dumps exactly as a client's JSON would carry it: "\ud800".
    body = {"messages": [{"to": "0821234567", "text": "fine"},
                         {"to": "0821234568", "text": f"Hi {bad}"}]}

    def post(key: str, payload: dict[str, object]) -> httpx.Response:
        return httpx.post(f"{hub.url}/v1/messages", content=json.dumps(payload), timeout=10,
                          headers={"Authorization": f"Bearer {key}",
                                   "Content-Type": "application/json"})

    with ThreadPoolExecutor(8) as pool:
        others = [pool.submit(post, beta, {"to": f"08312345{i:02d}", "text": "other account"})
                  for i in range(20)]
        mixed = [pool.submit(post, acme, body) for _ in range(3)]
        answers = [f.result() for f in others]
        mixed_answers = [f.result() for f in mixed]
    assert [r.status_code for r in answers] == [202] * 20
    for r in mixed_answers:
        assert r.status_code in (200, 202, 207), r.text
        first, second = r.json()["results"]
        assert first["accepted"] is True
        assert second["accepted"] is False and second["error"]["code"] == "invalid_text"
    assert hub.spool.get_account("beta").balance == Decimal("95")
