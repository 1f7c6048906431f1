"""The JSON API's resources beyond sending, on a real uvicorn server driven by httpx:
messages listed with filters and cursor pages, cancelled with their credit refunded;
batches from JSON, a CSV body or a multipart upload, their progress and results as JSON
and CSV; balance and usage per day; every error an RFC 9457 problem."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from hub.clock import utcnow
from tests.hubthread import HubThread
from tests.polling import eventually

MakeHub = Callable[..., HubThread]
PROBLEM = "application/problem+json"


@pytest.fixture
def hub(make_hub: MakeHub) -> HubThread:
    return make_hub(simulator={"report_delay": 0.05, "undelivered_suffixes": ["13"]})


@pytest.fixture
def client(hub: HubThread) -> Iterator[httpx.Client]:
    key = hub.account("acme", credits="10", price="0.25", sender_ids=("ACME",))
    with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {key}"},
                      timeout=10) as c:
        yield c


def later() -> str:
    return (utcnow() + timedelta(hours=2)).isoformat()


def send(client: httpx.Client, **message: Any) -> str:
    r = client.post("/v1/messages", json={"text": "hi", **message})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["code"] == code and body["status"] == status
    assert body["type"] == f"urn:smshub:problem:{code}" and body["title"] and body["detail"]
    return body


def test_messages_are_listed_newest_first_in_cursor_pages(client: httpx.Client) -> None:
    sent = [send(client, to=f"082123450{i}", client_ref=f"ref-{i}") for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        r = client.get("/v1/messages", params={"limit": 2, **({"cursor": cursor} if cursor
                                                             else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["messages"]) <= 2 and "events" not in page["messages"][0]
        seen += [m["id"] for m in page["messages"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sent[::-1]


def test_messages_are_filtered_by_status_recipient_reference_batch_and_time(
    client: httpx.Client,
) -> None:
    now = send(client, to="0821234501", client_ref="a")
    scheduled = send(client, to="0821234502", client_ref="b", send_at=later())

    def listed(**params: str) -> list[str]:
        r = client.get("/v1/messages", params=params)
        assert r.status_code == 200, r.text
        return [m["id"] for m in r.json()["messages"]]

    assert listed(status="scheduled") == [scheduled]
    assert listed(status="pending,delivered,failed") == [scheduled, now]
    assert listed(recipient="+27 82 123 4501") == [now]
    assert listed(client_ref="b") == [scheduled]
    assert listed(batch_id="nope") == []
    assert listed(since=later()) == []
    assert listed(until=(utcnow() - timedelta(hours=1)).isoformat()) == []
    problem(client.get("/v1/messages", params={"status": "lost"}), 400, "invalid_request")
    problem(client.get("/v1/messages", params={"since": "soon"}), 400, "invalid_time")
    problem(client.get("/v1/messages", params={"cursor": "x"}), 400, "invalid_request")


def test_a_scheduled_message_is_cancelled_with_its_credit_refunded(
    client: httpx.Client, hub: HubThread,
) -> None:
    message_id = send(client, to="0821234567", send_at=later())
    assert hub.spool.get_account("acme").balance == Decimal("9.75")
    r = client.post(f"/v1/messages/{message_id}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and Decimal(r.json()["refunded"]) == Decimal("0.25")
    assert hub.spool.get_account("acme").balance == Decimal("10")
    assert client.get(f"/v1/messages/{message_id}").json()["status"] == "cancelled"
    again = problem(client.post(f"/v1/messages/{message_id}/cancel"), 409, "not_cancellable")
    assert "cancelled" in again["detail"]
    assert hub.spool.get_account("acme").balance == Decimal("10")


def test_a_sent_message_or_another_accounts_cannot_be_cancelled(
    client: httpx.Client, hub: HubThread,
) -> None:
    message_id = send(client, to="0821234567")
    eventually(lambda: client.get(f"/v1/messages/{message_id}").json()["status"]
               == "delivered", 10, 0.05, "delivered")
    problem(client.post(f"/v1/messages/{message_id}/cancel"), 409, "not_cancellable")
    other = hub.account("beta")
    r = httpx.post(f"{hub.url}/v1/messages/{message_id}/cancel",
                   headers={"Authorization": f"Bearer {other}"})
    problem(r, 404, "not_found")


def test_a_json_batch_answers_every_row_and_shows_its_progress_and_results(
    client: httpx.Client,
) -> None:
    r = client.post("/v1/batches", json={"name": "march.json", "messages": [
        {"to": "0821234567", "text": "one"}, {"to": "12", "text": "bad"},
        {"to": "0821234513", "text": "undelivered"}]})
    assert r.status_code == 202, r.text
    batch = r.json()
    assert (batch["name"], batch["format"], batch["state"]) == ("march.json", "json",
                                                                "accepted")
    assert (batch["rows"], batch["accepted"], batch["rejected"]) == (3, 2, 1)
    assert [(x["line"], x["accepted"]) for x in batch["results"]] == [
        (1, True), (2, False), (3, True)]
    assert batch["results"][1]["error"]["code"] == "invalid_number"

    def final() -> dict[str, Any] | None:
        shown: dict[str, Any] = client.get(f"/v1/batches/{batch['id']}").json()
        return shown if shown["state"] == "final" else None

    shown = eventually(final, 10, 0.05, "batch final")
    assert shown["messages"] == {"total": 2, "pending": 0, "delivered": 1, "failed": 1}
    listed = client.get("/v1/messages", params={"batch_id": batch["id"]}).json()["messages"]
    assert len(listed) == 2
    as_json = client.get(f"/v1/batches/{batch['id']}/results").json()
    assert {m["state"] for m in as_json["results"]} == {"delivered", "failed"}
    for answer in (client.get(f"/v1/batches/{batch['id']}/results?format=csv"),
                   client.get(f"/v1/batches/{batch['id']}/results",
                              headers={"Accept": "text/csv"})):
        assert answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
        assert rows[0][:3] == ["message_id", "recipient", "state"] and len(rows) == 3
        assert {row[2] for row in rows[1:]} == {"delivered", "failed"}


def test_a_csv_batch_is_read_by_the_ftp_parser_from_a_body_or_a_multipart_upload(
    client: httpx.Client,
) -> None:
    text = "to,text,client_ref\n0821234567,Hello,r1\n8.21E+10,mangled,r2\n"
    r = client.post("/v1/batches?name=list.csv", content=text.encode(),
                    headers={"Content-Type": "text/csv"})
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["name"], body["format"], body["accepted"], body["rejected"]) == (
        "list.csv", "csv", 1, 1)
    assert body["results"][1]["error"]["code"] == "number_mangled"
    winsms = "0821234568,From WinSMS\n0821234569,Again\n"
    r = client.post("/v1/batches", files={"file": ("C:\\upload\\win.txt", winsms.encode(),
                                                    "text/plain")})
    assert r.status_code == 202, r.text
    assert (r.json()["name"], r.json()["format"], r.json()["accepted"]) == ("win.txt",
                                                                             "winsms", 2)


def test_batch_refusals_are_problems_and_create_nothing(
    client: httpx.Client, hub: HubThread,
) -> None:
    problem(client.post("/v1/batches", content=b"\x00\x01\x02binary",
                        headers={"Content-Type": "text/csv"}), 422, "unreadable_file")
    problem(client.post("/v1/batches", content=b"", headers={"Content-Type": "text/csv"}),
            422, "empty_batch")
    problem(client.post("/v1/batches", json={"messages": []}), 400, "invalid_request")
    problem(client.post("/v1/batches", content=b"<x/>",
                        headers={"Content-Type": "application/xml"}),
            415, "unsupported_media_type")
    problem(client.post("/v1/batches", files={"other": ("a.csv", b"to,text\n")}), 400,
            "invalid_request")
    problem(client.get("/v1/batches/01NOPE"), 404, "not_found")
    assert hub.spool.list_batches(None, 10) == []


def test_a_batch_over_the_message_limit_is_refused(make_hub: MakeHub) -> None:
    hub = make_hub(http={"max_messages_per_request": 2})
    key = hub.account("acme")
    rows = "to,text\n" + "0821234567,x\n" * 3
    r = httpx.post(f"{hub.url}/v1/batches", content=rows.encode(),
                   headers={"Authorization": f"Bearer {key}", "Content-Type": "text/csv"})
    problem(r, 413, "too_many_messages")


def test_balance_and_usage_per_day(client: httpx.Client) -> None:
    send(client, to="0821234567")
    send(client, to="0821234568", text="x" * 200)  # two segments
    cancelled = send(client, to="0821234569", send_at=later())
    client.post(f"/v1/messages/{cancelled}/cancel")
    balance = client.get("/v1/balance").json()
    assert balance == {"account": "acme", "balance": "9.2500", "price_per_segment": "0.2500"
                       } or Decimal(balance["balance"]) == Decimal("9.25")
    usage = client.get("/v1/usage").json()
    assert len(usage["days"]) == 30 and usage["timezone"] == "Africa/Johannesburg"
    today = usage["days"][-1]
    assert (today["messages"], today["segments"], Decimal(today["credits"])) == (
        3, 4, Decimal("0.75"))
    assert usage["total"]["messages"] == 3
    one = client.get("/v1/usage", params={"from": today["date"], "to": today["date"]}).json()
    assert [d["date"] for d in one["days"]] == [today["date"]]
    problem(client.get("/v1/usage", params={"from": "2025-01-02", "to": "2025-01-01"}), 400,
            "invalid_time")
    problem(client.get("/v1/usage", params={"from": "2024-01-01", "to": "2025-06-01"}), 400,
            "invalid_time")
    problem(client.get("/v1/usage", params={"from": "March"}), 400, "invalid_time")


def test_every_json_api_error_is_a_problem_document(hub: HubThread,
                                                    client: httpx.Client) -> None:
    unauthorized = problem(httpx.get(f"{hub.url}/v1/balance"), 401, "unauthorized")
    assert "Bearer" in unauthorized["detail"]
    problem(client.get("/v1/nothing-here"), 404, "not_found")
    problem(client.delete("/v1/balance"), 405, "method_not_allowed")
    problem(client.get("/v1/messages/01NOPE"), 404, "not_found")
    problem(client.post("/v1/messages", content=b"{"), 400, "invalid_json")
    problem(client.get("/v1/balance?api_key=x"), 400, "credentials_in_url")
