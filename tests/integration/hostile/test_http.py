"""Hostile HTTP against the real uvicorn server with raw sockets and httpx: request
smuggling (Content-Length and Transfer-Encoding conflicts), oversize and endless heads and
bodies, slow clients, deep and malformed JSON, and credentials in the query string. Each
gets its HTTP answer (400, 408, 413, 431), no smuggled request acts, the connection is
closed rather than held for the attacker, memory stays bounded and the hub still serves
(P24, P25)."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa

from hub.model import Status
from spool.tables import messages
from tests.hubthread import HubThread
from tests.integration.hostile.conftest import running_hub
from tests.integration.hostile.watch import Peak, serves_http

TIMEOUT = 0.5  # [http] header_timeout and body_timeout of this module's hub


@dataclass(frozen=True)
class Served:
    hub: HubThread
    key: str

    @property
    def port(self) -> int:
        return int(self.hub.url.rsplit(":", 1)[1])

    def messages(self, text: str) -> int:
        """How many messages with this text the spool holds (any status)."""
        query = sa.select(sa.func.count()).select_from(messages).where(messages.c.text == text)
        with self.hub.spool.db.read() as conn:  # type: ignore[attr-defined]
            return int(conn.execute(query).scalar_one())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with running_hub(tmp_path_factory.mktemp("http"),
                     http={"port": 0, "header_timeout": TIMEOUT,
                           "body_timeout": TIMEOUT}) as hub:
        yield Served(hub, hub.account("acme", credits="1000"))


def exchange(served: Served, data: bytes, *, linger: float = 0.0) -> bytes:
    """Send `data`, wait `linger` seconds, then everything the server sends until it
    closes the connection (a server that holds it for the attacker fails the test)."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(data)
        time.sleep(linger)
        return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def flood(served: Served, head: bytes, chunk: bytes, limit: int = 64 << 20) -> bytes:
    """Send `head`, then `chunk` again and again until the server answers (or `limit`
    bytes have gone: the server never cut the client off)."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(head)
        sent = 0
        while sent < limit and not select.select([sock], [], [], 0.001)[0]:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        return read_all(sock)


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    assert answer.count(b"HTTP/1.1 ") == 1, answer  # one answer: nothing smuggled through
    return int(answer[9:12])


# --- request smuggling: one request whose framing two parsers could read two ways -------


def _inner(served: Served, text: str) -> bytes:
    """The request an attacker hides in the body: it would send a message if it acted."""
    body = b'{"to": "0821234567", "text": "%s"}' % text.encode()
    return (b"POST /v1/messages HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + served.key.encode() +
            b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


def _smuggle(head: str, body: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    return lambda inner: head.replace("\n", "\r\n").encode() + body(inner)


_END = b"0\r\n\r\n"
SMUGGLING = {
    "CL.TE": _smuggle("POST /healthz HTTP/1.1\nHost: hub\nContent-Length: 5\n"
                      "Transfer-Encoding: chunked\n\n", lambda i: _END + i),
    "TE.CL": _smuggle("POST /v1/messages HTTP/1.1\nHost: hub\nTransfer-Encoding: chunked\n"
                      "Content-Length: 4\n\n", lambda i: b"%x\r\n" % len(i) + i + b"\r\n" + _END),
    "TE obfuscated value": _smuggle("POST /v1/messages HTTP/1.1\nHost: hub\nContent-Length: 5"
                                    "\nTransfer-Encoding: xchunked\n\n", lambda i: _END + i),
    "TE space before colon": _smuggle("POST /v1/messages HTTP/1.1\nHost: hub\nContent-Length:"
                                      " 5\nTransfer-Encoding : chunked\n\n", lambda i: _END + i),
    "TE folded": _smuggle("POST /v1/messages HTTP/1.1\nHost: hub\nContent-Length: 5\n"
                          "Transfer-Encoding:\n chunked\n\n", lambda i: _END + i),
    "TE twice": _smuggle("POST /v1/messages HTTP/1.1\nHost: hub\nTransfer-Encoding: chunked\n"
                         "Transfer-Encoding: identity\nContent-Length: 5\n\n",
                         lambda i: _END + i),
    "TE chunked, identity": _smuggle("POST /v1/messages HTTP/1.1\nHost: hub\n"
                                     "Transfer-Encoding: chunked, identity\n\n",
                                     lambda i: _END + i),
    "two Content-Lengths": _smuggle("POST /v1/messages HTTP/1.1\nHost: hub\nContent-Length: 0"
                                    "\nContent-Length: 5\n\n", lambda i: i),
    "signed Content-Length": _smuggle("POST /v1/messages HTTP/1.1\nHost: hub\n"
                                      "Content-Length: +5\n\n", lambda i: i),
    "HTTP/1.0 with TE": _smuggle("POST /v1/messages HTTP/1.0\nHost: hub\n"
                                 "Transfer-Encoding: chunked\nContent-Length: 5\n\n",
                                 lambda i: _END + i),
    "chunk size overflow": _smuggle("POST /v1/messages HTTP/1.1\nHost: hub\n"
                                    "Transfer-Encoding: chunked\n\n",
                                    lambda i: b"fffffffffffffffff1\r\n" + i),
    "bare LF line ends": lambda i: (b"POST /v1/messages HTTP/1.1\nHost: hub\n"
                                    b"Transfer-Encoding: chunked\n\n0\n\n" + i),
    "NUL in a header": _smuggle("POST /v1/messages HTTP/1.1\nHost: hub\nX-A: a\0b\n"
                                "Content-Length: 5\n\n", lambda i: i),
}


@pytest.mark.parametrize("name", list(SMUGGLING))
def test_http_request_smuggling_gets_400_and_the_hidden_request_never_acts(
    served: Served, name: str
) -> None:
    text = f"smuggled {name}"
    with Peak() as peak:
        answer = exchange(served, SMUGGLING[name](_inner(served, text)))
    assert status_of(answer) == 400, answer
    assert b"Traceback" not in answer
    assert served.messages(text) == 0
    peak.assert_within()
    serves_http(served.hub, served.key)


# --- heads and bodies too large, too slow or endless -------------------------------------


_POST = ("POST /v1/messages HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
         "Authorization: Bearer {key}\r\n")


def _oversize_declared(served: Served) -> bytes:
    # Only the head is sent: the answer must come without reading a byte of the body.
    return exchange(served, (_POST.format(key=served.key)
                             + "Content-Length: 104857600\r\n\r\n").encode())


def _endless_body(served: Served) -> bytes:
    return flood(served, (_POST.format(key=served.key) + "Transfer-Encoding: chunked\r\n"
                          "\r\n").encode(), b"4000\r\n" + b"[" * 0x4000 + b"\r\n")


def _endless_header(served: Served) -> bytes:
    return flood(served, b"GET /healthz HTTP/1.1\r\nHost: hub\r\nX-Long: ", b"a" * 8192)


def _endless_headers(served: Served) -> bytes:
    return flood(served, b"GET /healthz HTTP/1.1\r\nHost: hub\r\n", b"X-A: b\r\n" * 1024)


def _endless_url(served: Served) -> bytes:
    return flood(served, b"GET /healthz?", b"x" * 8192)


def _trickled_head(served: Served) -> bytes:
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: hub\r\n")
        time.sleep(TIMEOUT / 2)
        sock.sendall(b"X-Slow: 1\r\n")  # still trickling: the deadline is for all headers
        return read_all(sock)


def _silent(served: Served) -> bytes:
    return exchange(served, b"")


def _trickled_body(served: Served) -> bytes:
    head = _POST.format(key=served.key) + "Content-Length: 200\r\n\r\n"
    return exchange(served, head.encode() + b'{"to": "0821')


@dataclass(frozen=True)
class Greedy:
    send: Callable[[Served], bytes]
    status: int | None  # None: closed without a word (nothing of a request came)
    says: bytes = b""
    within: float = 2.0  # seconds until the server has answered and closed


GREEDY = {
    "body declared over the limit": Greedy(_oversize_declared, 413, b"body_too_large", 1.0),
    "endless chunked body": Greedy(_endless_body, 413, b"body_too_large"),
    "endless header line": Greedy(_endless_header, 431),
    "endless list of headers": Greedy(_endless_headers, 431),
    "endless URL": Greedy(_endless_url, 431),
    "head trickled past its deadline": Greedy(_trickled_head, 408, b"did not arrive"),
    "connection that sends nothing": Greedy(_silent, None),
    "body trickled past its deadline": Greedy(_trickled_body, 408, b"request_timeout"),
}


@pytest.mark.parametrize("name", list(GREEDY))
def test_http_greedy_or_slow_client_is_answered_and_cut_off(served: Served, name: str) -> None:
    case = GREEDY[name]
    with Peak() as peak:
        started = time.monotonic()
        answer = case.send(served)
        took = time.monotonic() - started
    if case.status is None:
        assert answer == b""
    else:
        assert status_of(answer) == case.status, answer[:300]
        assert case.says in answer
    assert took < case.within
    peak.assert_within()
    serves_http(served.hub, served.key)


@pytest.mark.parametrize("rest", [b"POST /v1/messages HTTP/1.1\r\nHost: hub\r\n",
                                  b'Content-Length: 200\r\n\r\n{"to": "0821'])
def test_http_a_kept_alive_connections_next_request_has_its_deadlines_too(
        served: Served, rest: bytes) -> None:
    """The deadlines' timers are armed only when a read ends with a request unfinished: a
    later request on a connection whose first one came whole is cut off all the same,
    its head (first case) or its body (second) trickled past the deadline."""
    whole = (_POST.format(key=served.key) + "Content-Length: 36\r\n\r\n").encode() + (
        b'{"to": "0821234567", "text": "kept"}')
    second = rest if rest.startswith(b"POST") else _POST.format(key=served.key).encode() + rest
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(whole)
        time.sleep(0.1)  # answered and kept alive: the next request comes on its own
        sock.sendall(second)
        answer = read_all(sock)
    took = time.monotonic() - started
    first, _, then = answer.partition(b"HTTP/1.1 408 ")
    assert first.startswith(b"HTTP/1.1 202 "), answer[:300]
    assert then, answer[:600]
    assert (b"did not arrive" if rest.startswith(b"POST") else b"request_timeout") in then
    assert TIMEOUT < took < 2.5
    serves_http(served.hub, served.key)


# An answer given while the client is still sending (413 mid-body, 431 mid-head) must be
# followed by a clean close. Closing a socket with the client's bytes unread makes the
# kernel send RST, which a client's TCP may take for "drop what was not read yet": the
# answer is then lost (seen in CI as ConnectionResetError in the endless body case).
MIDSTREAM = {
    "413 mid-body": (lambda key: (_POST.format(key=key) + "Transfer-Encoding: chunked\r\n"
                                  "\r\n").encode()
                     + (b"4000\r\n" + b"[" * 0x4000 + b"\r\n") * 384, 413),
    "431 mid-head": (lambda key: b"GET /healthz HTTP/1.1\r\nHost: hub\r\n"
                     + b"X-A: b\r\n" * 131072, 431),
}


@pytest.mark.parametrize("name", list(MIDSTREAM))
def test_http_answer_given_midstream_ends_in_a_clean_close_not_a_reset(
    served: Served, name: str
) -> None:
    make, status = MIDSTREAM[name]
    data = make(served.key)  # 6 MB and 1 MB: far past each limit, sent without stopping
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        def send() -> None:
            with contextlib.suppress(OSError):  # the server may stop reading after its no
                sock.sendall(data)
        sender = threading.Thread(target=send)
        sender.start()
        try:
            answer = read_all(sock)  # a reset raises ConnectionResetError here
        finally:
            sender.join(10)
    assert status_of(answer) == status, answer[:300]
    serves_http(served.hub, served.key)


# --- JSON that is not what it seems ------------------------------------------------------


JSON_BODIES = {
    "arrays nested 100,000 deep": ("[" * 100_000 + "]" * 100_000, 400, "invalid_json"),
    "objects nested 100,000 deep": ('{"a":' * 100_000 + "1" + "}" * 100_000, 400,
                                    "invalid_json"),
    "an integer of 100,000 digits": ('{"to": "0821234567", "text": "x", "priority": '
                                     + "9" * 100_000 + "}", 400, "invalid_json"),
    "invalid UTF-8": (b'{"to": "0821234567", "text": "\xff\xfe"}'.decode("latin-1"), 400,
                      "invalid_json"),
    "not JSON at all": ("<xml/>", 400, "invalid_json"),
    "a bare string": ('"to"', 422, "invalid_field"),
    "messages not a list": ('{"messages": {"to": "0821234567"}}', 400, "invalid_request"),
    "more messages than allowed": ('{"messages": ['
                                   + ",".join(['{"to": "0821234567", "text": "x"}'] * 10_001)
                                   + "]}", 413, "too_many_messages"),
    "a lone surrogate": ('{"to": "0821234567", "text": "\\ud800"}', 422, "invalid_text"),
    "a NUL in the text": ('{"to": "0821234567", "text": "a\\u0000b"}', 422, "invalid_text"),
}


@pytest.mark.parametrize("name", list(JSON_BODIES))
def test_hostile_json_gets_its_json_error(served: Served, name: str) -> None:
    body, status, code = JSON_BODIES[name]
    with Peak() as peak:
        r = httpx.post(f"{served.hub.url}/v1/messages", content=body.encode("latin-1")
                       if name == "invalid UTF-8" else body.encode(), timeout=10,
                       headers={"Authorization": f"Bearer {served.key}",
                                "Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["code"] == code, r.text
    assert "Recursion" not in r.text and "Traceback" not in r.text
    peak.assert_within()
    serves_http(served.hub, served.key)


# --- credentials in the URL (P25) ---------------------------------------------------------


CREDENTIALS_IN_URL = {
    "api_key on the JSON API": ("POST", "/v1/messages?api_key={key}"),
    "apikey in capitals": ("POST", "/v1/messages?APIKEY={key}"),
    "api-key among other parameters": ("POST", "/v1/messages?a=1&api-key={key}"),
    "access_token": ("POST", "/v1/messages?access_token={key}"),
    "key when reading a message": ("GET", "/v1/messages/01J0000000000000000000000?key={key}"),
    "token when reading a message": ("GET", "/v1/messages/01J0000000000000000000000?token=x"),
    "user and password on the XML API": ("POST", "/xml?user=acme&password=secret"),
    "pass on WinSMS": ("POST", "/api/xmlsendsmsmulti.asp?user=acme&pass=secret"),
    # Kannel's /cgi-bin/sendsms itself takes them (an HTTP dialect: test_http_dialects.py).
    "password beside Kannel's path": ("POST", "/cgi-bin/other?username=acme&password=secret"),
    "session_id on Clickatell": ("POST", "/xml/xml?session_id=abc"),
    "an empty password": ("POST", "/v1/messages?password="),
}


@pytest.mark.parametrize("name", list(CREDENTIALS_IN_URL))
def test_credentials_in_the_query_string_get_400_and_are_never_checked(
    served: Served, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    method, path = CREDENTIALS_IN_URL[name]
    before = served.messages("in the URL")
    r = httpx.request(method, f"{served.hub.url}{path.format(key=served.key)}", timeout=5,
                      json={"to": "0821234567", "text": "in the URL"})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "credentials_in_url"
    assert served.key not in r.text and served.key not in caplog.text
    assert served.messages("in the URL") == before
    serves_http(served.hub, served.key)


def test_a_query_without_credentials_is_served(served: Served) -> None:
    r = httpx.post(f"{served.hub.url}/v1/messages?source=crm", timeout=5,
                   json={"to": "0821234567", "text": "query ok"},
                   headers={"Authorization": f"Bearer {served.key}"})
    assert r.status_code == 202 and r.json()["status"] == Status.ACCEPTED.value
