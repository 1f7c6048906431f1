"""A deadline on reading a request's headers, which uvicorn does not have: a client that
opens a connection and sends nothing, or trickles its header lines, is answered 408 and
cut off after `header_timeout` seconds instead of holding the connection for ever."""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

_TIMEOUT_BODY = b"the request headers did not arrive in time\n"
_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                     b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
                     % (len(_TIMEOUT_BODY), _TIMEOUT_BODY))


class HeaderDeadline(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline: armed when a connection opens
    and when a request's first byte arrives, disarmed once its headers are complete (the
    body's own deadline is BodyLimit's). Idle kept-alive connections stay uvicorn's
    `timeout_keep_alive`'s."""

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None
    _begun = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun = True
        if self._header_timer is None:  # a new request on a kept-alive connection
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._begun = False
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
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


def header_deadline(seconds: float) -> type[HeaderDeadline]:
    """The protocol class for one server (HeaderDeadline itself is never changed)."""
    return type("HubHttpProtocol", (HeaderDeadline,), {"header_timeout": seconds})
