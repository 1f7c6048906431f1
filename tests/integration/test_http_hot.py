"""The hot routes answered by the HTTP protocol itself (adapters/http/hot.py), on a real
server with raw sockets and httpx: plain sends skip uvicorn's ASGI cycle and everything
else takes it; pipelined requests are answered in order whichever way each goes; the
connection ends as HTTP/1.0, `Connection: close` and the endpoint's answer say."""

from __future__ import annotations

from contextlib import closing
from typing import Any

import httpx
import pytest
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from tests.integration.test_http_guards import MakeHub, connect, read_all


def post(key: str, body: bytes, version: bytes = b"1.1", extra: bytes = b"") -> bytes:
    return (b"POST /v1/messages HTTP/" + version + b"\r\nHost: hub\r\n"
            b"Content-Type: application/json\r\nAuthorization: Bearer " + key.encode()
            + b"\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body)


MESSAGE = b'{"to": "0821234567", "text": "hot"}'


def statuses(answer: bytes) -> list[int]:
    return [int(part[:3]) for part in answer.split(b"HTTP/1.1 ")[1:]]


def test_plain_sends_skip_the_asgi_cycle_and_the_rest_take_it(
        make_hub: MakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    cycles: list[str] = []
    run_asgi = RequestResponseCycle.run_asgi

    async def counted(self: RequestResponseCycle, app: Any) -> None:
        cycles.append(self.scope["path"])
        await run_asgi(self, app)

    monkeypatch.setattr(RequestResponseCycle, "run_asgi", counted)
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
