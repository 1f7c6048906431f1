"""aiosmtpd's SMTP session behind connection caps: beyond `max_connections` open sessions,
or `max_connections_per_ip` from one address, a new connection is answered 421 and closed
before any session starts (each idle session holds a socket for aiosmtpd's timeout)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from aiosmtpd.smtp import SMTP

log = logging.getLogger(__name__)

TOO_MANY = b"421 4.7.0 Too many connections; try again later\r\n"


class ConnectionCaps:
    """Open sessions, in all and per address (the event loop's thread only)."""

    def __init__(self, total: int, per_ip: int) -> None:
        self.total = total
        self.per_ip = per_ip
        self.open: Counter[str] = Counter()

    def enter(self, ip: str) -> bool:
        if sum(self.open.values()) >= self.total or self.open[ip] >= self.per_ip:
            return False
        self.open[ip] += 1
        return True

    def leave(self, ip: str) -> None:
        self.open[ip] -= 1
        if self.open[ip] <= 0:
            del self.open[ip]


class CappedSMTP(SMTP):
    """An SMTP session that counts itself against the caps while its connection lasts."""

    def __init__(self, *args: Any, caps: ConnectionCaps, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._caps = caps
        self._ip: str | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Called again with the TLS transport after STARTTLS: only the first one counts.
        if self.transport is None and self._ip is None:
            peer = transport.get_extra_info("peername")
            ip = str(peer[0]) if peer else ""
            if not self._caps.enter(ip):
                self._refused = True
                log.info("SMTP connection refused: too many connections",
                         extra={"action": "smtp-connections"})
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(TOO_MANY)
                transport.close()
                return
            self._ip = ip
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return  # no session was started: nothing of aiosmtpd's to end
        if self._ip is not None:
            self._caps.leave(self._ip)
            self._ip = None
        super().connection_lost(error)
