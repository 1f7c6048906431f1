"""Guards on a request's arrival, which uvicorn does not have: deadlines (a client that
opens a connection and sends nothing, or trickles its header lines, is answered 408 and
cut off after `header_timeout` seconds; one whose body is not whole `body_timeout`
seconds after its head, likewise), a size cap (a head still arriving past
MAX_HEAD_BYTES is answered 431, never buffered whole), a lingering close (an answer
given before the client finished sending reaches it), a response's head and body sent
in one write, and no credentials in the URL (400, P25; the HTTP dialects' paths
excepted)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from adapters.http.app import error_json
from adapters.http.dialects.paths import CREDENTIALS_ALLOWED

log = logging.getLogger(__name__)

# The request line and headers of one request. Ours need a few hundred bytes (a key is 50);
# httptools buffers whatever arrives before the blank line, so without a cap a client
# sending headers at loopback speed grew the process by ~140 MB a second.
MAX_HEAD_BYTES = 64 * 1024
_HEAD_BODY = b"the request line and headers exceed %d bytes\n" % MAX_HEAD_BYTES
_HEAD_RESPONSE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                  b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
                  b"content-length: %d\r\n\r\n%s" % (len(_HEAD_BODY), _HEAD_BODY))
# Query parameters that carry a secret (compared without case, "-" read as "_"). A URL
# lands in proxies' and servers' access logs and in browser history.
CREDENTIAL_PARAMETERS = frozenset({
    "api_key", "apikey", "key", "access_token", "token", "auth", "authorization",
    "password", "passwd", "pwd", "pass", "secret", "session_id",
})

_TIMEOUT_BODY = b"the request headers did not arrive in time\n"
_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                     b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
                     % (len(_TIMEOUT_BODY), _TIMEOUT_BODY))


def encode_answer(status: int, headers: list[tuple[bytes, bytes]], body: bytes,
                  defaults: list[tuple[bytes, bytes]], keep_alive: bool) -> bytes:
    """A whole answer as uvicorn writes it: status line, uvicorn's default headers
    (date), the response's own, `connection: close` when the connection ends here."""
    parts = [STATUS_LINE[status]]
    for name, value in (*defaults, *headers):
        parts += (name, b": ", value, b"\r\n")
    if not keep_alive and (b"connection", b"close") not in headers:
        parts.append(b"connection: close\r\n")
    parts += (b"\r\n", body)
    return b"".join(parts)


# The body's deadline is answered as the JSON API answers any error (a problem), on
# every path: by then the request's own handler may be waiting for the body.
_BODY_TIMEOUT = error_json(408, "request_timeout", "the request body did not arrive in time",
                           Connection="close")
_BODY_TIMEOUT_RESPONSE = encode_answer(408, _BODY_TIMEOUT.raw_headers,
                                       bytes(_BODY_TIMEOUT.body), [], keep_alive=False)


# A lingering close (Apache's and nginx's): an answer given while the client is still
# sending (413 to an endless body, 431 to an endless head) is followed by our FIN, and
# what the client sends after it is read and dropped until it closes too, for at most
# LINGER_SECONDS and LINGER_BYTES. Closing at once with its bytes unread makes the kernel
# send RST, and a client's TCP then drops the answer it had not read yet.
LINGER_SECONDS = 2.0
LINGER_BYTES = 4 << 20


class _Lingering:
    """The transport uvicorn's protocol is given: close() lingers when the client may
    still be sending (HeaderDeadline.sending) and closes at once otherwise; a response's
    head waits for its body (written in the same turn of the loop) to go out in one
    send(2) and one TCP segment, not two; every other call goes to the real transport."""

    def __init__(self, transport: asyncio.Transport, protocol: HeaderDeadline) -> None:
        self._transport = transport
        self._protocol = protocol
        self.lingering = False
        self._dropped = 0  # bytes read and dropped while lingering
        self._head: bytes | None = None  # a response head not yet written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def write(self, data: bytes) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
        elif data.startswith(b"HTTP/1."):
            # uvicorn writes the head at http.response.start and the body at
            # http.response.body, with no wait between them for a whole response: one
            # send instead of two, a third less of uvicorn's write time per request.
            self._head = data
            self._protocol.loop.call_soon(self.flush)  # a head whose body comes later
            return
        self._transport.write(data)

    def write_whole(self, data: bytes) -> None:
        self.flush()
        self._transport.write(data)

    def flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._head or b"")

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def close(self) -> None:
        transport = self._transport
        if self.lingering or transport.is_closing():
            return
        self.flush()
        if not (self._protocol.sending() and transport.can_write_eof()):
            transport.close()
            return
        self.lingering = True
        transport.write_eof()  # after what is buffered: the answer goes first
        transport.resume_reading()  # uvicorn may have paused it; the rest is drained
        self._protocol.loop.call_later(LINGER_SECONDS, self.abort_lingering)

    def drained(self, count: int) -> None:
        """`count` more bytes came after the answer: dropped, up to LINGER_BYTES."""
        self._dropped += count
        if self._dropped > LINGER_BYTES:
            self.abort_lingering()

    def abort_lingering(self) -> None:
        self._head = None
        if not self._transport.is_closing():
            self._transport.abort()


class HeaderDeadline(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline (armed when a connection opens
    and when a read ends with a later request's head begun, disarmed once its headers
    are complete) and a body deadline (armed when a read ends with a request's head in
    and its body not yet whole). A request that arrives in one piece, as nearly all do,
    costs no timer: a timeout around each of the app's reads of the body was a tenth of
    the event loop's time per single POST. Idle kept-alive connections stay uvicorn's
    `timeout_keep_alive`'s."""

    header_timeout: float = 10.0
    body_timeout: float = 60.0
    _header_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _begun = False
    # Bytes of the head being read; a chunk in which a request ended is not counted (the
    # next head may start in it), so a head is cut off by MAX_HEAD_BYTES plus one read.
    _in_head = True
    _head_bytes = 0
    _ended_in_chunk = False
    _lingering: _Lingering | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._lingering = _Lingering(transport, self)
        super().connection_made(self._lingering)  # type: ignore[arg-type]
        self._arm()

    def sending(self) -> bool:
        """Whether the client may still be sending: a head begun, or a body not ended."""
        if self._in_head:
            return self._head_bytes > 0 or self._begun
        return self.cycle is not None and self.cycle.more_body

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None and self._lingering.lingering:
            self._lingering.drained(len(data))
            return
        self._ended_in_chunk = False
        super().data_received(data)
        if not self._in_head:  # a head read, its body still coming
            if self._body_timer is None and not self.transport.is_closing():
                self._body_timer = self.loop.call_later(self.body_timeout, self._body_expired)
            return
        if self._begun and self._header_timer is None and not self.transport.is_closing():
            self._arm()  # a new request's head begun on a kept-alive connection, not ended
        if self._ended_in_chunk or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._disarm()
            self.transport.write(_HEAD_RESPONSE)
            log.debug("HTTP request head too large", extra={"action": "http-head"})
            self.transport.close()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._body_complete()

    def _body_complete(self) -> None:
        self._in_head, self._head_bytes, self._ended_in_chunk = True, 0, True
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun = True

    def on_headers_complete(self) -> None:
        self._head_complete()
        super().on_headers_complete()

    def _head_complete(self) -> None:
        self._disarm()
        self._begun = False
        self._in_head = False

    def _write_whole(self, data: bytes) -> None:
        """A whole answer, head and body, in one write (not held back as a head)."""
        assert self._lingering is not None
        self._lingering.write_whole(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self._begun:  # part of a request came: say why it is cut off
            self.transport.write(_TIMEOUT_RESPONSE)
        log.debug("HTTP request headers timed out", extra={"action": "http-timeout"})
        self.transport.close()

    def _body_expired(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None:
            return
        log.info("request body timed out on %s", cycle.scope.get("path", "?"),
                 extra={"action": "http-timeout"})
        if not cycle.response_started:
            self.transport.write(_BODY_TIMEOUT_RESPONSE)
        # The app's read of the body ends as a disconnect (ClientDisconnect: BodyLimit's
        # and ExactPaths' to end quietly), and nothing it answers goes out after this.
        cycle.disconnected = True
        cycle.message_event.set()
        self.transport.close()  # lingering: the client is still sending


class NoCredentialsInUrl:
    """Refuses a request whose query string carries a credential (`?api_key=...`,
    `?password=...`) with 400 before anything else reads it: the key is never checked, so
    a URL that leaked into a log cannot be tried either. Keys go in `Authorization`.
    Carriers' callbacks (/carriers/...) are the providers' requests, in their own formats,
    authenticated apart: they are left alone. So are the HTTP dialects' paths (WinSMS,
    Clickatell, Kannel: dialects/paths.py), whose clients send credentials in the URL as
    the originals take them; there failed logins are limited and nothing logs the URL."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query: bytes = scope.get("query_string", b"") if scope["type"] == "http" else b""
        path = scope.get("path", "")
        if path.startswith("/carriers/") or path in CREDENTIALS_ALLOWED:
            query = b""
        named = query and credential_in(query)
        if not named:
            await self.app(scope, receive, send)
            return
        log.info("request refused: a credential (%s) in its URL", named,
                 extra={"action": "http-credentials"})
        response = error_json(
            400, "credentials_in_url",
            f"credentials are not accepted in the URL ('{named}'); send the API key in the "
            "Authorization header, and replace a key that was sent in a URL",
            Connection="close")
        await response(scope, receive, send)


def credential_in(query: bytes) -> str:
    """The first query parameter named like a credential, or ""."""
    for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name.strip().lower().replace("-", "_") in CREDENTIAL_PARAMETERS:
            return name[:40]
    return ""
