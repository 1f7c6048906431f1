"""Stopping the HTTP listener: connections still open are closed by uvicorn's graceful
shutdown, one still owed an answer (a sendsms staged without a task too) once it has
it; with none open, the listener closes without waiting on it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import uvicorn

from hub.accounts import hash_password
from tests.hubthread import HubThread


@pytest.fixture
def shutdowns(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many connections each uvicorn graceful shutdown found open."""
    seen: list[int] = []
    original = uvicorn.Server.shutdown

    async def counted(self: uvicorn.Server, *args: Any, **kwargs: Any) -> None:
        seen.append(len(self.server_state.connections))
        await original(self, *args, **kwargs)

    monkeypatch.setattr(uvicorn.Server, "shutdown", counted)
    return seen


def test_a_stop_with_a_connection_open_closes_it_through_the_graceful_shutdown(
        make_hub: Callable[..., HubThread], shutdowns: list[int]) -> None:
    hub = make_hub()
    with socket.create_connection(("127.0.0.1", hub.hub.http_port), timeout=10) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
        assert conn.recv(4096).startswith(b"HTTP/1.1 ")  # kept alive after the answer
        hub.stop()
        assert conn.recv(4096) == b""  # closed by the hub, not by the client
    assert shutdowns == [1]


def test_a_stop_with_nothing_open_closes_the_listener_without_the_drain(
        make_hub: Callable[..., HubThread], shutdowns: list[int]) -> None:
    hub = make_hub()
    port = hub.hub.http_port
    hub.stop()
    assert shutdowns == []  # uvicorn's shutdown sleeps 0.1 s even with nothing to drain
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
    # The port is free again: a new listener can take it.
    again = make_hub(http={"port": port})
    assert again.hub.http_port == port


def test_a_stop_answers_a_sendsms_staged_without_a_task_before_it_closes(
        make_hub: Callable[..., HubThread], shutdowns: list[int]) -> None:
    """A prompted request (adapters/http/hot.py) has no task for the shutdown to wait
    for: its connection, still owed an answer, holds the shutdown until it is answered."""
    hub = make_hub()
    hub.account("acme", credits="10")
    hub.spool.set_password_hash("acme", hash_password("foo"))
    request = (b"GET /cgi-bin/sendsms?username=acme&password=foo&to=0821234567&text=x"
               b" HTTP/1.1\r\nHost: hub\r\n\r\n")
    spool = hub.spool
    accept = spool.accept
    held, release = threading.Event(), threading.Event()

    def slow(*args: Any, **kwargs: Any) -> Any:
        held.set()
        release.wait(10)
        return accept(*args, **kwargs)

    with socket.create_connection(("127.0.0.1", hub.hub.http_port), timeout=10) as conn:
        conn.sendall(request)  # the password checked, now cached
        assert conn.recv(4096).startswith(b"HTTP/1.1 202 ")
        spool.accept = slow  # type: ignore[method-assign]
        conn.sendall(request)  # staged at once; its commit held
        assert held.wait(10)
        stopping = threading.Thread(target=hub.stop)
        stopping.start()
        time.sleep(0.3)
        assert stopping.is_alive()  # the shutdown waits for the owed answer
        release.set()
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
        stopping.join(10)
    assert answer.startswith(b"HTTP/1.1 202 ") and answer.endswith(b"0: Accepted for delivery")
    assert b"connection: close" in answer.lower()
    assert shutdowns == [1]
