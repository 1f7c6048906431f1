"""What the account-scoped JSON endpoints that list things share: the Bearer key, a
spool that cannot answer (503), JSON errors for bad queries, and opaque cursors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from adapters.http.app import HttpContext, error_json, temporarily
from hub.accounts import KeyExpired
from hub.errors import AuthenticationError, TemporaryFailure
from hub.model import Account

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

Handler = Callable[[Account, Request], Awaitable[Response]]


class BadQuery(Exception):
    """A request the client must change: answered with `status` and `code`."""

    def __init__(self, message: str, code: str = "invalid_request", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def guarded(ctx: HttpContext, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint that runs `handler` for the account whose API key the request carries."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(await _authenticate(ctx, request), request)
        except AuthenticationError as exc:
            code = "key_expired" if isinstance(exc, KeyExpired) else "unauthorized"
            return error_json(401, code, str(exc),
                              **{"WWW-Authenticate": 'Bearer realm="smshub"'})
        except TemporaryFailure as exc:
            words, headers = temporarily(ctx, exc)
            return error_json(503, "unavailable", words, **headers)
        except BadQuery as exc:
            return error_json(exc.status, exc.code, str(exc))

    return endpoint


async def _authenticate(ctx: HttpContext, request: Request) -> Account:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthenticationError("send 'Authorization: Bearer <api key>'")
    return await ctx.credentials.by_api_key(key.strip())


def limit_of(request: Request) -> int:
    text = request.query_params.get("limit")
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadQuery(f"'limit' must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def encode_cursor(*parts: str) -> str:
    """An opaque cursor: clients hand it back as it is and never read it."""
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def decode_cursor(request: Request, count: int) -> list[str] | None:
    """The parts of the request's `cursor`, or None without one; BadQuery if it is not
    a cursor this API gave."""
    text = request.query_params.get("cursor")
    if not text:
        return None
    try:
        parts = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode().split("|")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        parts = []
    if len(parts) != count or not all(parts):
        raise BadQuery("'cursor' is not one this API gave; pass next_cursor as it came")
    return parts
