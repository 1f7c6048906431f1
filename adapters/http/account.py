"""`GET /v1/balance` (the account's credit now) and `GET /v1/usage?from=&to=` (its
messages, segments and credits per day, days in the hub's zone)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.http.app import HttpContext
from adapters.http.pages import BadQuery, guarded
from hub import views
from hub.clock import utcnow
from hub.model import Account
from hub.ports import DayUsage

MAX_DAYS = 366
DEFAULT_DAYS = 30


def routes(ctx: HttpContext) -> list[BaseRoute]:
    async def balance(account: Account, request: Request) -> Response:
        # Read afresh: the account the credential cache holds may be minutes old.
        now = await ctx.runner.call(ctx.runner.spool.get_account_by_id, account.id)
        return JSONResponse({"account": now.name, "balance": views.money(now.balance),
                             "price_per_segment": views.money(now.price_per_segment)})

    async def usage(account: Account, request: Request) -> Response:
        return await _usage(ctx, account, request)

    return [Route("/v1/balance", guarded(ctx, balance), methods=["GET"]),
            Route("/v1/usage", guarded(ctx, usage), methods=["GET"])]


async def _usage(ctx: HttpContext, account: Account, request: Request) -> Response:
    zone = ZoneInfo(ctx.timezone)
    today = utcnow().astimezone(zone).date()
    last = _day(request, "to") or today
    first = _day(request, "from") or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last or (last - first).days >= MAX_DAYS:
        raise BadQuery(f"'from' must be a day on or before 'to', at most {MAX_DAYS} days "
                       "before it", "invalid_time")
    return JSONResponse(await usage_report(ctx, account.id, first, last))


async def usage_report(ctx: HttpContext, account_id: int, first: date,
                       last: date) -> dict[str, Any]:
    """Messages, segments and credits per day from `first` to `last` (days in the hub's
    zone, each listed) and their total: GET /v1/usage's answer, the portal's chart."""
    zone = ZoneInfo(ctx.timezone)
    since = datetime.combine(first, time(), zone)
    until = datetime.combine(last + timedelta(days=1), time(), zone)
    offset = since.utcoffset() or timedelta(0)
    found = await ctx.runner.call(ctx.runner.spool.usage_by_day, account_id, since, until,
                                  offset)
    by_day = {u.day: u for u in found}
    days = [_view(by_day.get(day.isoformat()), day)
            for day in (first + timedelta(days=n) for n in range((last - first).days + 1))]
    total = {"messages": sum(u.messages for u in found),
             "segments": sum(u.segments for u in found),
             "credits": views.money(sum((u.credits for u in found), Decimal(0)))}
    return {"from": first.isoformat(), "to": last.isoformat(),
            "timezone": ctx.timezone, "days": days, "total": total}


def _view(found: DayUsage | None, day: date) -> dict[str, Any]:
    if found is None:
        return {"date": day.isoformat(), "messages": 0, "segments": 0, "credits": "0"}
    return {"date": found.day, "messages": found.messages, "segments": found.segments,
            "credits": views.money(found.credits)}


def _day(request: Request, name: str) -> date | None:
    text = request.query_params.get(name)
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise BadQuery(f"'{name}' must be a day, YYYY-MM-DD", "invalid_time") from None
