"""How requests to an HTTP upstream authenticate: Basic, a bearer token, keys in a header,
the form or the query, or a token exchanged for Basic credentials and renewed before it
expires (SMSPortal's JWT). Nothing here logs a credential."""

from __future__ import annotations

import asyncio
import base64
import time

import httpx

from adapters.carriers.http import placeholders
from adapters.carriers.http.exchange import AuthParts
from adapters.carriers.http.settings import Auth

# A token is renewed this long before the provider says it expires.
_RENEW_MARGIN = 60.0


class TokenError(Exception):
    """The token endpoint gave no token; the reason carries no credential."""


def basic(username: str, password: str) -> str:
    pair = f"{username}:{password}".encode()
    return f"Basic {base64.b64encode(pair).decode('ascii')}"


class Authenticator:
    """Gives each request its credentials; for `token`, fetches one token at a time and
    keeps it until shortly before it expires, or until the provider refuses it."""

    def __init__(self, auth: Auth) -> None:
        self._auth = auth
        self._token = ""
        self._expires = 0.0  # time.monotonic()
        self._lock = asyncio.Lock()

    @property
    def renewable(self) -> bool:
        return self._auth.kind == "token"

    def forget(self) -> None:
        """The provider refused the token: the next request fetches a new one."""
        self._token, self._expires = "", 0.0

    async def parts(self, client: httpx.AsyncClient) -> AuthParts:
        auth = self._auth
        if auth.kind == "basic":
            return AuthParts(headers={"Authorization": basic(auth.username, auth.password)})
        if auth.kind == "bearer":
            return AuthParts(headers={"Authorization": f"Bearer {auth.token}"})
        if auth.kind == "key":
            keys = dict(auth.keys)
            if auth.key_in == "form":
                return AuthParts(form=keys)
            if auth.key_in == "query":
                return AuthParts(query=keys)
            return AuthParts(headers=keys)
        if auth.kind == "token":
            return AuthParts(headers={"Authorization": f"Bearer {await self._current(client)}"})
        return AuthParts()

    async def _current(self, client: httpx.AsyncClient) -> str:
        async with self._lock:
            if not self._token or time.monotonic() >= self._expires:
                self._token, lifetime = await self._fetch(client)
                self._expires = time.monotonic() + max(lifetime - _RENEW_MARGIN, lifetime / 2)
            return self._token

    async def _fetch(self, client: httpx.AsyncClient) -> tuple[str, float]:
        auth = self._auth
        try:
            response = await client.get(
                auth.token_url, headers={"Authorization": basic(auth.username, auth.password)})
        except httpx.HTTPError as exc:
            raise TokenError(f"token request failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise TokenError(f"token request refused: HTTP {response.status_code}")
        try:
            document = response.json()
        except ValueError:
            raise TokenError("token answer is not JSON") from None
        token = placeholders.scalar(placeholders.path(document, auth.token_path))
        if not token:
            raise TokenError(f"token answer has no '{auth.token_path}'")
        lifetime = auth.token_max_age
        if auth.token_minutes_path:
            minutes = placeholders.path(document, auth.token_minutes_path)
            if isinstance(minutes, int | float) and not isinstance(minutes, bool) and minutes > 0:
                lifetime = min(lifetime, float(minutes) * 60)
        return token, lifetime
