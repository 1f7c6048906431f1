"""`/v1/consents`: the recipients who agreed to the account's marketing outside CPA
regulation 4's hours. GET lists them by number, paged by an opaque cursor; POST records
one with a note of how it was given (releasing the messages to it the rule held);
DELETE `/v1/consents/{number}` withdraws it."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.http.app import HttpContext, error_json
from adapters.http.idempotency import idempotent
from adapters.http.optouts import number_and_note, parse_body, parse_number
from adapters.http.pages import decode_cursor, encode_cursor, guarded, limit_of
from hub import views
from hub.clock import utcnow
from hub.consents import Consent
from hub.model import Account


def routes(ctx: HttpContext) -> list[BaseRoute]:
    api = ConsentApi(ctx)
    return [
        Route("/v1/consents", guarded(ctx, api.list), methods=["GET"]),
        Route("/v1/consents", guarded(ctx, idempotent(ctx, api.add)), methods=["POST"]),
        Route("/v1/consents/{number}", guarded(ctx, api.remove), methods=["DELETE"]),
    ]


class ConsentApi:
    def __init__(self, ctx: HttpContext) -> None:
        self.ctx = ctx
        self.spool = ctx.runner.spool

    async def list(self, account: Account, request: Request) -> Response:
        limit = limit_of(request)
        parts = decode_cursor(request, 1)
        after = "" if parts is None else parts[0]
        found = await self.ctx.runner.call(self.spool.list_consents, account.id, after,
                                           limit + 1)
        page = found[:limit]
        cursor = encode_cursor(page[-1].number) if len(found) > limit else None
        return JSONResponse({"consents": [views.consent_view(c) for c in page],
                             "next_cursor": cursor})

    async def add(self, account: Account, request: Request) -> Response:
        number, note = self._body(parse_body(await request.body()))
        new = Consent(account.id, number, utcnow(), note)
        consent, created, released = await self.ctx.runner.call(self.spool.add_consent, new)
        # `released`: the account's messages to the number CPA hours held, now due again.
        return JSONResponse({**views.consent_view(consent), "released": released},
                            201 if created else 200)

    async def remove(self, account: Account, request: Request) -> Response:
        number = self._number(request.path_params["number"])
        if not await self.ctx.runner.call(self.spool.remove_consent, account.id, number):
            return error_json(404, "not_found", f"no consent recorded for {number}")
        return Response(status_code=204)

    def _body(self, body: Any) -> tuple[str, str | None]:
        return number_and_note(self.ctx, body, "note")

    def _number(self, raw: str) -> str:
        return parse_number(self.ctx, raw)
