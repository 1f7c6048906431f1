"""The portal's account pages: replies and opt-outs, balance and usage per day as a
chart, API keys (a new one shown once, revoke), webhook endpoints (hub.webhooks' rules)
and the senders allowed to email SMS; every change scoped to the signed-in account."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from adapters.http.account import DEFAULT_DAYS, usage_report
from adapters.http.portal.forms import Form
from adapters.http.portal.web import HEADERS, NotYours, Visitor, Web
from hub import views
from hub.accounts import new_api_key
from hub.clock import utcnow
from hub.errors import Rejected
from hub.webhooks import MAX_ENDPOINTS, check_host, new_endpoint

CHART_HEIGHT = 120  # px of the tallest bar in the usage chart
MAX_SENDERS = 100


class Settings:
    def __init__(self, web: Web, secret: bytes) -> None:
        self.web = web
        self.ctx = web.ctx
        self.secret = secret

    async def replies(self, visitor: Visitor, request: Request, form: Form) -> Response:
        spool, call, account = self.ctx.runner.spool, self.ctx.runner.call, visitor.account
        inbound = await call(spool.list_inbound, account.id, None, 100)
        optouts = await call(spool.list_optouts, account.id, 0, 500)
        return self.web.render(request, "replies.html", visitor,
                               inbound=[views.inbound_view(m) for m in inbound],
                               optouts=[views.optout_view(o) for o in optouts])

    async def usage(self, visitor: Visitor, request: Request, form: Form) -> Response:
        spool, call = self.ctx.runner.spool, self.ctx.runner.call
        now = await call(spool.get_account_by_id, visitor.account.id)
        today = utcnow().astimezone(ZoneInfo(self.ctx.timezone)).date()
        report = await usage_report(self.ctx, now.id,
                                    today - timedelta(days=DEFAULT_DAYS - 1), today)
        return self.web.render(request, "usage.html", visitor, report=report,
                               bars=_bars(report["days"]), height=CHART_HEIGHT,
                               balance=views.money(now.balance),
                               price=views.money(now.price_per_segment))

    async def keys(self, visitor: Visitor, request: Request, form: Form,
                   new_key: str = "", status: int = 200) -> Response:
        found = await self.ctx.runner.call(self.ctx.runner.spool.api_keys,
                                           visitor.account.name)
        return self.web.render(request, "keys.html", visitor, status, keys=found,
                               new_key=new_key)

    async def create_key(self, visitor: Visitor, request: Request, form: Form) -> Response:
        made = new_api_key(self.secret)  # only its digest is stored
        await self.ctx.runner.call(self.ctx.runner.spool.add_api_key, visitor.account.name,
                                   made.key_id, made.digest, None)
        return await self.keys(visitor, request, form, new_key=made.key, status=201)

    async def revoke_key(self, visitor: Visitor, request: Request, form: Form) -> Response:
        # The spool looks the key up within this account only: another's is NotFound.
        await self.ctx.runner.call(self.ctx.runner.spool.revoke_api_key, visitor.account.name,
                                   request.path_params["key_id"], utcnow())
        return RedirectResponse("/keys", 303, headers=HEADERS)

    async def webhooks(self, visitor: Visitor, request: Request, form: Form,
                       **shown: Any) -> Response:
        found = await self.ctx.runner.call(self.ctx.runner.spool.list_webhooks,
                                           visitor.account.id)
        status = shown.pop("status", 200)
        return self.web.render(request, "webhooks.html", visitor, status,
                               endpoints=[views.webhook_view(e) for e in found], **shown)

    async def add_webhook(self, visitor: Visitor, request: Request, form: Form) -> Response:
        spool, call = self.ctx.runner.spool, self.ctx.runner.call
        url, allowed = form.get("url").strip(), self.ctx.webhook_networks
        try:
            if len(await call(spool.list_webhooks, visitor.account.id)) >= MAX_ENDPOINTS:
                raise Rejected("too_many_endpoints",
                               f"an account may have at most {MAX_ENDPOINTS} endpoints")
            endpoint = new_endpoint(visitor.account.id, url, ["*"], allowed, utcnow(),
                                    description=form.get("description").strip())
            await asyncio.to_thread(check_host, url, allowed)  # resolving may block
        except Rejected as exc:
            return await self.webhooks(visitor, request, form, status=422, error=exc.reason,
                                       url=url)
        made = await call(spool.create_webhook, endpoint)
        return await self.webhooks(visitor, request, form, status=201,
                                   created=views.webhook_view(made, with_secret=True))

    async def remove_webhook(self, visitor: Visitor, request: Request, form: Form) -> Response:
        spool, call = self.ctx.runner.spool, self.ctx.runner.call
        found = await call(spool.get_webhook, request.path_params["endpoint_id"])
        if found is None or found.account_id != visitor.account.id:
            raise NotYours
        await call(spool.remove_webhook, found.id, utcnow())
        return RedirectResponse("/webhooks", 303, headers=HEADERS)

    async def email(self, visitor: Visitor, request: Request, form: Form,
                    status: int = 200, error: str = "") -> Response:
        settings = await self.ctx.runner.call(self.ctx.runner.spool.get_mail_settings,
                                              visitor.account.id)
        return self.web.render(request, "email.html", visitor, status,
                               senders=settings.allowed_senders, error=error)

    async def save_email(self, visitor: Visitor, request: Request, form: Form) -> Response:
        senders = tuple(dict.fromkeys(
            s.strip().lower() for s in form.get("senders").replace(",", "\n").splitlines()
            if s.strip()))
        bad = [s for s in senders if " " in s or "." not in s.rpartition("@")[2]]
        if bad or len(senders) > MAX_SENDERS:
            error = (f"'{bad[0][:80]}' is neither an address nor a domain" if bad
                     else f"at most {MAX_SENDERS} senders")
            return await self.email(visitor, request, form, 422, error)
        spool, call = self.ctx.runner.spool, self.ctx.runner.call
        current = await call(spool.get_mail_settings, visitor.account.id)
        await call(spool.save_mail_settings, replace(current, allowed_senders=senders))
        return RedirectResponse("/email", 303, headers=HEADERS)


def _bars(days: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One bar per day, scaled to the busiest day's segments."""
    top = max((d["segments"] for d in days), default=0) or 1
    return [{**d, "height": round(CHART_HEIGHT * d["segments"] / top)} for d in days]
