"""The HTTP listener against slow and greedy clients, on a real uvicorn server: a slow but
steady request within its deadlines is served, connections beyond the cap are answered
503, and the unauthenticated /readyz never shows the database's details. Heads and bodies
that never finish arriving are cut off (408) in tests/integration/hostile/test_http.py."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest

from hub.errors import TemporaryFailure
from hub.ports import SchemaState, Spool
from tests.hubthread import HubThread

MakeHub = Callable[..., HubThread]


def connect(hub: HubThread) -> socket.socket:
    return socket.create_connection(("127.0.0.1", int(hub.url.rsplit(":", 1)[1])), timeout=5)


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a socket timeout fails the test)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_http_slow_but_steady_request_within_its_deadlines_is_served(
        make_hub: MakeHub) -> None:
    hub = make_hub(http={"port": 0, "header_timeout": 5.0, "body_timeout": 5.0})
    key = hub.account("acme", credits="10")
    body = b'{"to": "0821234567", "text": "slow"}'
    with closing(connect(hub)) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: hub\r\nContent-Type: "
                     b"application/json\r\nConnection: close\r\nAuthorization: Bearer "
                     + key.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 8):
            sock.sendall(body[i:i + 8])
            time.sleep(0.05)
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 202 ") or answer.startswith(b"HTTP/1.1 201 ")


def test_http_connections_beyond_max_connections_get_503(make_hub: MakeHub) -> None:
    hub = make_hub(http={"port": 0, "max_connections": 2})
    idle = [connect(hub), connect(hub)]
    try:
        with httpx.Client(base_url=hub.url) as client:
            assert client.get("/healthz").status_code == 503
    finally:
        for sock in idle:
            sock.close()


class UnreachableDatabase:
    """The spool of a node whose PostgreSQL is down: what the driver says names the host,
    port and user (psycopg's own wording)."""

    DETAIL = ('connection to server at "db.internal" (10.1.2.3), port 5432 failed: FATAL: '
              'password authentication failed for user "smshub"')

    def __init__(self, spool: Spool) -> None:
        self._spool = spool

    def schema_state(self) -> SchemaState:
        raise TemporaryFailure(f"spool unavailable: {self.DETAIL}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spool, name)


@pytest.fixture
def down_hub(make_hub: MakeHub) -> Iterator[HubThread]:
    hub = make_hub()
    assert hub.hub.services is not None
    runner = hub.hub.services.runner
    real = runner._spool
    runner._spool = UnreachableDatabase(real)  # type: ignore[assignment]
    yield hub
    runner._spool = real


def test_readyz_says_not_ready_without_the_databases_details(
        down_hub: HubThread, caplog: pytest.LogCaptureFixture) -> None:
    with httpx.Client(base_url=down_hub.url) as client:
        r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable", "reason": "the spool is unavailable"}
    for secret in ("db.internal", "10.1.2.3", "5432", "smshub", "FATAL"):
        assert secret not in r.text
    assert any("db.internal" in rec.getMessage() for rec in caplog.records)  # the log has it
