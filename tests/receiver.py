"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 (port 0) in a thread that
records every request (path with its query, headers, body; POST or GET) and answers as
the test scripts it per path: a status, a Retry-After, a delay, a redirect; `verified`
checks signatures with the Standard Webhooks reference library."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from standardwebhooks.webhooks import Webhook

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schemas"
                     / "webhook-event.schema.json").read_text())


class _Server(ThreadingHTTPServer):
    # The hub opens up to [webhooks] connections at once; the stdlib's backlog of 5
    # drops the rest's SYNs, which then wait for retransmission (seconds).
    request_queue_size = 256


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded


@dataclass
class Script:
    """What a path answers: `statuses` in turn (the last one repeats)."""
    statuses: list[int] = field(default_factory=lambda: [204])
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Receiver:
    def __init__(self, port: int = 0) -> None:
        self.hits: list[Hit] = []
        self.scripts: dict[str, Script] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver._answer(self, body)

            def do_GET(self) -> None:  # Kannel's dlr-url and Clickatell's callback
                receiver._answer(self, b"")

            def log_message(self, *args: Any) -> None:
                return None

        self.server = _Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        path = handler.path
        # A GET's query changes from push to push: a script for its path without the
        # query answers them all, counting them together.
        key = path if path in self.scripts else path.partition("?")[0]
        with self._lock:
            seen = sum(1 for h in self.hits if h.path == path or h.path.partition("?")[0] == key)
            self.hits.append(Hit(path, {k.lower(): v for k, v in handler.headers.items()},
                                 body))
            script = self.scripts.get(key, Script())
        if script.delay:
            time.sleep(script.delay)
        status = script.statuses[min(seen, len(script.statuses) - 1)]
        handler.send_response(status)
        for name, value in script.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def at(self, path: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path == path]

    def under(self, path: str) -> list[Hit]:
        """Requests to `path` whatever their query (GET pushes)."""
        with self._lock:
            return [h for h in self.hits if h.path.partition("?")[0] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def verified(hit: Hit, secret: str) -> dict[str, Any]:
    """The event, once the reference library accepts its signature and it matches the
    shipped JSON Schema (raises otherwise)."""
    payload: dict[str, Any] = Webhook(secret).verify(hit.body, hit.headers)
    jsonschema.validate(payload, SCHEMA)
    return payload


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()
