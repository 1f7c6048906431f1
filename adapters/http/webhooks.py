"""`/v1/webhooks` (an account's signed event endpoints: add, list, show, remove, rotate
the secret, replay, recent deliveries) and `/v1/hooks`, the subscribe/unsubscribe
contract of Zapier's REST hooks and Power Automate's webhook triggers, on the same
endpoints and the same outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.http.app import HttpContext, parse_json
from adapters.http.idempotency import idempotent
from adapters.http.pages import BadQuery, guarded
from hub import views
from hub.clock import parse_time, seconds, utcnow
from hub.errors import Rejected
from hub.model import Account, WebhookEndpoint
from hub.webhooks import MAX_ENDPOINTS, Network, check_host, new_endpoint, new_secret

_FIELDS = {"url", "events", "description"}


def routes(ctx: HttpContext) -> list[BaseRoute]:
    api = WebhookApi(ctx)
    return [
        Route("/v1/webhooks", guarded(ctx, idempotent(ctx, api.add)), methods=["POST"]),
        Route("/v1/webhooks", guarded(ctx, api.list), methods=["GET"]),
        Route("/v1/webhooks/{endpoint_id}", guarded(ctx, api.show), methods=["GET"]),
        Route("/v1/webhooks/{endpoint_id}", guarded(ctx, api.remove), methods=["DELETE"]),
        Route("/v1/webhooks/{endpoint_id}/rotate", guarded(ctx, idempotent(ctx, api.rotate)),
              methods=["POST"]),
        Route("/v1/webhooks/{endpoint_id}/replay", guarded(ctx, idempotent(ctx, api.replay)),
              methods=["POST"]),
        Route("/v1/webhooks/{endpoint_id}/deliveries", guarded(ctx, api.deliveries),
              methods=["GET"]),
        Route("/v1/hooks", guarded(ctx, idempotent(ctx, api.subscribe)), methods=["POST"]),
        Route("/v1/hooks/{endpoint_id}", guarded(ctx, api.unsubscribe), methods=["DELETE"]),
    ]


def _body(raw: bytes) -> dict[str, Any]:
    try:
        body = parse_json(raw)
    except (ValueError, RecursionError) as exc:
        raise BadQuery(str(exc) if isinstance(exc, ValueError) else "nested too deeply",
                       "invalid_json") from None
    if not isinstance(body, dict):
        raise BadQuery("the body must be a JSON object", "invalid_request")
    return body


def _string(body: dict[str, Any], name: str, required: bool = False) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise BadQuery(f"'{name}' must be a non-empty string", "invalid_field")
    return value.strip()


class WebhookApi:
    def __init__(self, ctx: HttpContext) -> None:
        self.ctx = ctx
        self.spool = ctx.runner.spool
        self.allowed: Sequence[Network] = ctx.webhook_networks

    async def _create(self, account: Account, url: str, events: list[str], kind: str,
                      description: str) -> WebhookEndpoint:
        existing = await self.ctx.runner.call(self.spool.list_webhooks, account.id)
        if len(existing) >= MAX_ENDPOINTS:
            raise BadQuery(f"an account may have at most {MAX_ENDPOINTS} endpoints",
                           "too_many_endpoints", 409)
        try:
            endpoint = new_endpoint(account.id, url, events, self.allowed, utcnow(),
                                    kind=kind, description=description)
            # Resolving may block: off the event loop.
            await asyncio.to_thread(check_host, url, self.allowed)
        except Rejected as exc:
            raise BadQuery(exc.reason, exc.code) from None
        return await self.ctx.runner.call(self.spool.create_webhook, endpoint)

    async def add(self, account: Account, request: Request) -> Response:
        body = _body(await request.body())
        if unknown := sorted(set(body) - _FIELDS):
            raise BadQuery(f"unknown field '{unknown[0]}'; allowed: "
                           + ", ".join(sorted(_FIELDS)), "invalid_field")
        events = body.get("events", ["*"])
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise BadQuery("'events' must be a list of event names", "invalid_field")
        endpoint = await self._create(account, _string(body, "url", True), events, "webhook",
                                      _string(body, "description"))
        return JSONResponse(views.webhook_view(endpoint, with_secret=True), 201,
                            headers={"Location": f"/v1/webhooks/{endpoint.id}"})

    async def list(self, account: Account, request: Request) -> Response:
        found = await self.ctx.runner.call(self.spool.list_webhooks, account.id)
        return JSONResponse({"webhooks": [views.webhook_view(e) for e in found]})

    async def _own(self, account: Account, request: Request) -> WebhookEndpoint:
        endpoint_id = request.path_params["endpoint_id"]
        found = await self.ctx.runner.call(self.spool.get_webhook, endpoint_id)
        if found is None or found.account_id != account.id:
            raise BadQuery(f"no webhook '{endpoint_id}' in this account", "not_found", 404)
        return found

    async def show(self, account: Account, request: Request) -> Response:
        return JSONResponse(views.webhook_view(await self._own(account, request)))

    async def remove(self, account: Account, request: Request) -> Response:
        endpoint = await self._own(account, request)
        await self.ctx.runner.call(self.spool.remove_webhook, endpoint.id, utcnow())
        return Response(status_code=204)

    async def rotate(self, account: Account, request: Request) -> Response:
        endpoint = await self._own(account, request)
        now = utcnow()
        until = now + seconds(self.ctx.webhook_secret_overlap)
        rotated = await self.ctx.runner.call(self.spool.rotate_webhook_secret, endpoint.id,
                                             new_secret(), until, now)
        if rotated is None:
            raise BadQuery(f"no webhook '{endpoint.id}' in this account", "not_found", 404)
        return JSONResponse(views.webhook_view(rotated, with_secret=True))

    async def replay(self, account: Account, request: Request) -> Response:
        endpoint = await self._own(account, request)
        raw = await request.body()
        body = _body(raw) if raw.strip() else {}
        since: datetime | None = None
        if "since" in body:
            try:
                since = parse_time(_string(body, "since", True), self.ctx.timezone)
            except ValueError as exc:
                raise BadQuery(f"'since': {exc}", "invalid_field") from None
        item = _string(body, "event_id") or None
        queued = await self.ctx.runner.call(self.spool.replay_webhook, endpoint.id, since,
                                            item, utcnow())
        return JSONResponse({"queued": queued}, 202)

    async def deliveries(self, account: Account, request: Request) -> Response:
        endpoint = await self._own(account, request)
        rows = await self.ctx.runner.call(self.spool.webhook_deliveries, endpoint.id, 100)
        return JSONResponse({"deliveries": [views.delivery_view(r) for r in rows]})

    # --- Zapier REST hooks and Power Automate webhook triggers -----------------------

    async def subscribe(self, account: Account, request: Request) -> Response:
        """Zapier posts {"target_url", "event"}; a Power Automate connector posts the
        flow's callback URL (`callback_url` or `url` in our connector definition).
        Both get 201, the id, and a Location to DELETE to unsubscribe."""
        body = _body(await request.body())
        zapier = "target_url" in body
        url = _string(body, "target_url" if zapier else
                      ("callback_url" if "callback_url" in body else "url"), True)
        event = body.get("event", body.get("events", "*"))
        events = [event] if isinstance(event, str) else event
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise BadQuery("'event' must be an event name (or a list of them)",
                           "invalid_field")
        endpoint = await self._create(account, url, events,
                                      "zapier" if zapier else "powerautomate", "")
        location = f"/v1/hooks/{endpoint.id}"
        return JSONResponse({"id": endpoint.id, **views.webhook_view(endpoint)}, 201,
                            headers={"Location": location})

    async def unsubscribe(self, account: Account, request: Request) -> Response:
        endpoint = await self._own(account, request)
        await self.ctx.runner.call(self.spool.remove_webhook, endpoint.id, utcnow())
        return Response(status_code=204)
