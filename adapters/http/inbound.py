"""`GET /v1/inbound`: the account's inbound messages (replies, opt-outs, ...) in the order
they were received, paged by an opaque cursor, optionally only those since a time."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.http.app import HttpContext
from adapters.http.pages import BadQuery, decode_cursor, encode_cursor, guarded, limit_of
from hub import views
from hub.clock import parse_time
from hub.errors import Rejected
from hub.model import Account


def routes(ctx: HttpContext) -> list[BaseRoute]:
    async def listing(account: Account, request: Request) -> Response:
        return await _list(ctx, account, request)

    return [Route("/v1/inbound", guarded(ctx, listing), methods=["GET"])]


async def _list(ctx: HttpContext, account: Account, request: Request) -> Response:
    limit = limit_of(request)
    since = _since(ctx, request)
    after = _after(request)
    spool = ctx.runner.spool
    # One more than asked for tells whether another page follows.
    found = await ctx.runner.call(spool.inbound_page, account.id, since, after, limit + 1)
    page = found[:limit]
    more = len(found) > limit
    cursor = (encode_cursor(page[-1].received_at.isoformat(), page[-1].id)
              if more else None)
    return JSONResponse({"inbound": [views.inbound_view(m) for m in page],
                         "next_cursor": cursor})


def _since(ctx: HttpContext, request: Request) -> datetime | None:
    text = request.query_params.get("since")
    if not text:
        return None
    try:
        return parse_time(text, ctx.timezone)
    except Rejected as exc:
        raise BadQuery(f"'since': {exc.reason}", "invalid_time") from None


def _after(request: Request) -> tuple[datetime, str] | None:
    parts = decode_cursor(request, 2)
    if parts is None:
        return None
    try:
        at = datetime.fromisoformat(parts[0])
    except ValueError:
        raise BadQuery("'cursor' is not one this API gave; pass next_cursor as it came"
                       ) from None
    if at.tzinfo is None:
        raise BadQuery("'cursor' is not one this API gave; pass next_cursor as it came")
    return at, parts[1]
