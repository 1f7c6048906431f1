"""The one outbound HTTP client every push shares (signed webhooks, the dialects'
delivery-report pushes): an aiohttp session whose every connection goes through the
guarding resolver, no proxies from the environment, no decompression; how a
receiver's answer is read (Retry-After); and the check of a push URL a request gives."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import aiohttp

from adapters.webhooks.targets import GuardedResolver
from hub.webhooks import Network, check_resolved, check_url

RESOLVE_TIMEOUT = 2.0  # seconds a request waits to resolve a push URL's host


class GuardedClient:
    """A keep-alive pool, made on first use (inside the running loop), that connects only
    where `allowed` and hub.webhooks' policy let it, resolving each host again for every
    new connection (DNS rebinding)."""

    def __init__(self, allowed: Sequence[Network], timeout: float, connections: int,
                 user_agent: str) -> None:
        self.allowed = list(allowed)
        self._timeout = timeout
        self._connections = connections
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._connections, resolver=GuardedResolver(self.allowed),
                use_dns_cache=False, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self._timeout,
                                              connect=min(self._timeout, 10.0)),
                auto_decompress=False, headers={"User-Agent": self._user_agent},
                trust_env=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def retry_after(value: str | None, now: float) -> int | None:
    """Retry-After as seconds or an HTTP date (RFC 9110); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(int(when.timestamp() - now), 0)


async def check_target(url: str, allowed: Sequence[Network]) -> None:
    """Refuse (ForbiddenTarget) a push URL given on a request, as a webhook endpoint is
    refused when it is added: the URL itself, then every address its host resolves to
    now. A host that does not resolve at the moment (or not within RESOLVE_TIMEOUT) is
    let through: each delivery resolves it again and checks again."""
    host = urlsplit(check_url(url, allowed)).hostname or ""
    try:
        # Bounded: a slow resolver must not hold the request that named the URL.
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, 443, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        return
    check_resolved(host, (str(i[4][0]) for i in infos), allowed)
