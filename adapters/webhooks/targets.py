"""aiohttp's resolver for webhook deliveries: every connection a delivery opens goes to an
address the hub's policy (hub.webhooks) allows, checked after resolution, so a name that
later resolves elsewhere (DNS rebinding) is caught. aiohttp does not ask the resolver for
literal addresses; the channel checks those on the URL itself."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

from aiohttp.abc import AbstractResolver, ResolveResult

from hub.webhooks import Network, check_resolved


class GuardedResolver(AbstractResolver):
    def __init__(self, allowed: Sequence[Network]) -> None:
        self._allowed = list(allowed)

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        check_resolved(host, (str(i[4][0]) for i in infos), self._allowed)
        return [ResolveResult(hostname=host, host=str(sockaddr[0]), port=port, family=fam,
                              proto=proto, flags=socket.AI_NUMERICHOST)
                for fam, _, proto, _, sockaddr in infos]

    async def close(self) -> None:
        return None
