"""The hot routes answered by the HTTP protocol itself (adapters/http/hot.py), on a real
server with raw sockets and httpx: plain sends skip uvicorn's ASGI cycle and everything
else takes it; pipelined requests are answered in order whichever way each goes; the
connection ends as HTTP/1.0, `Connection: close` and the endpoint's answer say; a
sendsms, a WinSMS batchmessage.asp or a Clickatell sendmsg whose login is cached, and a
POST /v1/messages whose key is, are staged and answered without a task, alone or with
the requests of many connections in one turn."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from contextlib import closing
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from adapters.http.dialects.kannel import KannelHttp
from adapters.http.hot import HotRoutes
from hub.accounts import hash_password
from spool.tables import messages
from tests.hubthread import HubThread
from tests.integration.test_http_guards import MakeHub, connect, read_all


def post(key: str, body: bytes, version: bytes = b"1.1", extra: bytes = b"") -> bytes:
    return (b"POST /v1/messages HTTP/" + version + b"\r\nHost: hub\r\n"
            b"Content-Type: application/json\r\nAuthorization: Bearer " + key.encode()
            + b"\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body)


MESSAGE = b'{"to": "0821234567", "text": "hot"}'
ID = "[0-9A-Z]{26}"


def statuses(answer: bytes) -> list[int]:
    return [int(part[:3]) for part in answer.split(b"HTTP/1.1 ")[1:]]


def counted_calls(monkeypatch: pytest.MonkeyPatch, owner: type, name: str,
                  seen: Callable[[Any, Any], str]) -> list[str]:
    """What `seen` makes of each call (self, its one argument) of the coroutine method
    `owner.name`, which still runs as before."""
    calls: list[str] = []
    original = getattr(owner, name)

    async def counted(self: Any, arg: Any) -> None:
        calls.append(seen(self, arg))
        await original(self, arg)

    monkeypatch.setattr(owner, name, counted)
    return calls


def with_login(make_hub: MakeHub, credits: str = "10") -> HubThread:
    """A hub whose account `acme` logs in to the dialects with the password `foo`."""
    hub = make_hub(http={"port": 0})
    hub.account("acme", credits=credits)
    hub.spool.set_password_hash("acme", hash_password("foo"))
    return hub


def hot_tasks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the hot requests answered in a task of their own (not prompted)."""
    return counted_calls(monkeypatch, HotRoutes, "_answer", lambda _, hot: hot.scope["path"])


def test_plain_sends_skip_the_asgi_cycle_and_the_rest_take_it(
        make_hub: MakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    cycles = counted_calls(monkeypatch, RequestResponseCycle, "run_asgi",
                           lambda cycle, _: cycle.scope["path"])
    hub = make_hub(http={"port": 0})
    key = hub.account("acme", credits="10")
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=hub.url, headers=auth) as client:
        for _ in range(3):
            answer = client.post("/v1/messages", json={"to": "0821234567", "text": "hot"})
            assert answer.status_code == 202, answer.text
            assert answer.headers["content-type"] == "application/json"
            assert "date" in answer.headers  # as uvicorn answers
        sendsms = client.get("/cgi-bin/sendsms", params={
            "username": "acme", "password": key, "to": "0821234567", "text": "hot"})
        assert (sendsms.status_code, sendsms.text) == (202, "0: Accepted for delivery")
        assert client.get("/healthz").status_code == 200
        refused = client.post("/v1/messages?api_key=x", json={"to": "0821234567", "text": "x"})
        assert refused.json()["code"] == "credentials_in_url"
        chunked = client.post("/v1/messages", content=iter([MESSAGE]))  # no length: chunked
        assert chunked.status_code == 202
    assert cycles == ["/healthz", "/v1/messages", "/v1/messages"]


def test_pipelined_requests_are_answered_in_order(make_hub: MakeHub) -> None:
    hub = make_hub(http={"port": 0})
    key = hub.account("acme", credits="10")
    with closing(connect(hub)) as sock:
        sock.sendall(post(key, MESSAGE) + post(key, b"{not json")
                     + b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n"
                     + post(key, MESSAGE, extra=b"Connection: close\r\n"))
        answer = read_all(sock)
    assert statuses(answer) == [202, 400, 200, 202]
    assert answer.rstrip().endswith(b"}")  # the last answer whole, then the close


def test_http_1_0_and_connection_close_end_the_connection_after_the_answer(
        make_hub: MakeHub) -> None:
    hub = make_hub(http={"port": 0})
    key = hub.account("acme", credits="10")
    for request in (post(key, MESSAGE, version=b"1.0"),
                    post(key, MESSAGE, extra=b"Connection: close\r\n")):
        with closing(connect(hub)) as sock:
            sock.sendall(request)
            answer = read_all(sock)  # returns only once the server closes
        assert statuses(answer) == [202]
        assert b"\r\nconnection: close\r\n" in answer.lower()


def test_a_body_split_over_several_reads_is_read_whole(make_hub: MakeHub) -> None:
    hub = make_hub(http={"port": 0})
    key = hub.account("acme", credits="10")
    request = post(key, MESSAGE, extra=b"Connection: close\r\n")
    with closing(connect(hub)) as sock:
        head, _, body = request.partition(b"\r\n\r\n")
        sock.sendall(head + b"\r\n\r\n")
        for i in range(0, len(body), 5):
            sock.sendall(body[i:i + 5])
        answer = read_all(sock)
    assert statuses(answer) == [202]
    assert b'"accepted":true' in answer.replace(b" ", b"")


def test_sendsms_with_its_login_cached_is_staged_and_answered_without_a_task(
        make_hub: MakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = hot_tasks(monkeypatch)
    hub = with_login(make_hub)

    def sendsms(client: httpx.Client, **fields: str) -> httpx.Response:
        return client.get("/cgi-bin/sendsms", params={
            "username": "acme", "password": "foo", "text": "hot", **fields})

    with httpx.Client(base_url=hub.url) as client:
        first = sendsms(client, to="0821234567")  # the password checked: a task
        assert (first.status_code, first.text) == (202, "0: Accepted for delivery")
        assert len(tasks) == 1
        for to in ("0821234568", "0821234569 0821234570"):
            again = sendsms(client, to=to)
            assert (again.status_code, again.text) == (202, "0: Accepted for delivery")
        assert len(tasks) == 1  # staged by the Prompter, committed, answered: no task
        denied = sendsms(client, to="12")  # no message to commit: answered at once
        assert (denied.status_code, denied.text) == (
            400, "Number(s) has/have been denied by white- and/or black-lists.")
        binary = sendsms(client, to="0821234571", coding="1")  # declined: the task says
        assert (binary.status_code, binary.text) == (
            400, "8-bit (binary) coding is not supported, rejected")
        wrong = client.get("/cgi-bin/sendsms", params={
            "username": "acme", "password": "bar", "to": "0821234572", "text": "x"})
        assert wrong.status_code == 403
        form = client.post("/cgi-bin/sendsms", data={  # a form POST is staged alike
            "username": "acme", "password": "foo", "to": "0821234573", "text": "hot"})
        assert (form.status_code, form.text) == (202, "0: Accepted for delivery")
    assert len(tasks) == 3  # the binary coding and the wrong password only
    with hub.spool.db.engine.connect() as conn:  # type: ignore[attr-defined]
        stored = sorted(conn.execute(select(messages.c.recipient)).scalars())
    assert stored == ["+27821234567", "+27821234568", "+27821234569", "+27821234570",
                      "+27821234573"]


def test_a_post_with_its_key_cached_is_staged_and_answered_without_a_task(
        make_hub: MakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = hot_tasks(monkeypatch)
    hub = make_hub(http={"port": 0})
    key = hub.account("acme", credits="10")
    with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {key}"}) as client:
        first = client.post("/v1/messages", json={"to": "0821234567", "text": "hot"})
        assert first.status_code == 202, first.text  # the key checked in the spool: a task
        assert len(tasks) == 1
        second = client.post("/v1/messages", json={"to": "0821234568", "text": "hot"})
        assert second.status_code == 202, second.text
        assert second.headers["content-type"] == "application/json"
        assert second.json() == {**first.json(), "id": second.json()["id"]}
        batch = client.post("/v1/messages", json={"messages": [
            {"to": "0821234569", "text": "hot"}, {"to": "0821234570", "text": 5}]})
        assert (batch.status_code, batch.json()["accepted"], batch.json()["refused"]) == (
            202, 1, 1)
        assert batch.json()["results"][1]["error"]["code"] == "invalid_field"
        assert len(tasks) == 1  # staged by the Prompter, committed, answered: no task
        refused = client.post("/v1/messages", json={"to": "0821234571", "text": 5})
        assert (refused.status_code, refused.json()["code"]) == (422, "invalid_field")
        assert len(tasks) == 1  # nothing to commit: answered at once, still no task
        broken = client.post("/v1/messages", content=b'{"to": ')  # declined: the task says
        assert (broken.status_code, broken.json()["code"]) == (400, "invalid_json")
        keyed = {"Idempotency-Key": "k-1"}  # declined: the key is claimed in the spool
        once = client.post("/v1/messages", json={"to": "0821234572", "text": "k"},
                           headers=keyed)
        twice = client.post("/v1/messages", json={"to": "0821234572", "text": "k"},
                            headers=keyed)
        assert once.status_code == twice.status_code == 202
        assert once.json() == twice.json()
        wrong = client.post("/v1/messages", json={"to": "0821234573", "text": "x"},
                            headers={"Authorization": "Bearer smshub_nope_nope"})
        assert (wrong.status_code, wrong.json()["code"]) == (401, "unauthorized")
    assert tasks == ["/v1/messages"] * 5  # the first, the broken body, the keyed, the wrong key
    with hub.spool.db.engine.connect() as conn:  # type: ignore[attr-defined]
        stored = sorted(conn.execute(select(messages.c.recipient)).scalars())
    assert stored == ["+27821234567", "+27821234568", "+27821234569", "+27821234572"]
    assert hub.spool.get_account("acme").balance == Decimal("10") - 4 * Decimal("0.25")


def test_winsms_and_clickatell_sends_with_their_login_cached_are_staged_without_a_task(
        make_hub: MakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = hot_tasks(monkeypatch)
    hub = with_login(make_hub)
    login = {"user": "acme", "password": "foo"}

    with httpx.Client(base_url=hub.url) as client:
        def winsms(numbers: str, **extra: str) -> str:
            return client.get("/api/batchmessage.asp", params={
                **login, "message": "hot", "numbers": numbers, **extra}).text

        def clickatell(to: str, **extra: str) -> str:
            return client.get("/http/sendmsg", params={
                **login, "api_id": "1", "to": to, "text": "hot", **extra}).text

        assert re.fullmatch(f"0821234567={ID};", winsms("0821234567")), "checked: a task"
        assert len(tasks) == 1
        assert re.fullmatch(f"0821234568={ID};12=BADDEST;", winsms("0821234568;12"))
        assert re.fullmatch(f"ID: {ID} To: 27821234569\nID: {ID} To: 27821234570",
                            clickatell("27821234569,27821234570"))
        assert clickatell("12") == "ERR: 105, Invalid destination address"  # nothing to commit
        form = client.post("/api/batchmessage.asp", data={  # a form POST is staged alike
            **login, "message": "hot", "numbers": "0821234571"})
        assert re.fullmatch(f"0821234571={ID};", form.text)
        assert len(tasks) == 1  # staged by the Prompters, committed, answered: no task
        # Declined, each answered by its endpoint's task in the dialect's words:
        assert winsms("") == "INVALID"
        assert winsms("0821234572", password="bar") == "FAIL"
        assert clickatell("27821234573", deliv_time="x").startswith("ERR: 120")
        session = client.get("/http/auth", params={**login, "api_id": "1"}).text
        by_session = client.get("/http/sendmsg", params={
            "session_id": session.removeprefix("OK: "), "to": "27821234574", "text": "hot"})
        assert re.fullmatch(f"ID: {ID}", by_session.text)
    assert tasks == ["/api/batchmessage.asp"] * 3 + ["/http/sendmsg", "/http/sendmsg"]
    with hub.spool.db.engine.connect() as conn:  # type: ignore[attr-defined]
        stored = sorted(conn.execute(select(messages.c.recipient)).scalars())
    assert stored == ["+27821234567", "+27821234568", "+27821234569", "+27821234570",
                      "+27821234571", "+27821234574"]


def test_prompted_requests_of_many_connections_share_the_group_commit(
        make_hub: MakeHub) -> None:
    hub = with_login(make_hub, credits="100")
    query = "username=acme&password=foo&text=many&to=08212345{:02d}"

    async def many() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=hub.url,
                                     limits=httpx.Limits(max_connections=20)) as client:
            await client.get("/cgi-bin/sendsms?" + query.format(99))  # the login cached
            return await asyncio.gather(*(client.get("/cgi-bin/sendsms?" + query.format(i))
                                          for i in range(40)))

    answers = asyncio.run(many())
    assert {(a.status_code, a.text) for a in answers} == {(202, "0: Accepted for delivery")}
    assert hub.spool.get_account("acme").balance == Decimal("100") - 41 * Decimal("0.25")


def test_a_prompter_that_fails_hands_the_request_to_its_endpoint(
        make_hub: MakeHub, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(self: KannelHttp, request: Any, body: bytes) -> None:
        raise RuntimeError("a bug in a prompter")

    monkeypatch.setattr(KannelHttp, "prompt", broken)
    hub = with_login(make_hub)
    answer = httpx.get(f"{hub.url}/cgi-bin/sendsms", params={
        "username": "acme", "password": "foo", "to": "0821234567", "text": "x"})
    assert (answer.status_code, answer.text) == (202, "0: Accepted for delivery")
    assert any("a bug in a prompter" in (r.exc_text or "") for r in caplog.records)
