"""`/v1/optouts`: the account's opt-out list (WASPA). GET lists it, oldest first, paged
by an opaque cursor; POST adds a number with a reason; GET and DELETE
`/v1/optouts/{number}` read and remove one entry. STOP replies join it by themselves."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.http.app import HttpContext, error_json, parse_json
from adapters.http.idempotency import idempotent
from adapters.http.pages import BadQuery, decode_cursor, encode_cursor, guarded, limit_of
from hub import views
from hub.clock import utcnow
from hub.errors import Rejected
from hub.model import Account
from hub.optouts import NewOptOut, OptOutMethod

MAX_NOTE = 500  # characters of an opt-out's reason or a consent's note


def routes(ctx: HttpContext) -> list[BaseRoute]:
    api = OptOutApi(ctx)
    return [
        Route("/v1/optouts", guarded(ctx, api.list), methods=["GET"]),
        Route("/v1/optouts", guarded(ctx, idempotent(ctx, api.add)), methods=["POST"]),
        Route("/v1/optouts/{number}", guarded(ctx, api.show), methods=["GET"]),
        Route("/v1/optouts/{number}", guarded(ctx, api.remove), methods=["DELETE"]),
    ]


class OptOutApi:
    def __init__(self, ctx: HttpContext) -> None:
        self.ctx = ctx
        self.spool = ctx.runner.spool

    async def list(self, account: Account, request: Request) -> Response:
        limit = limit_of(request)
        parts = decode_cursor(request, 1)
        if parts is not None and not parts[0].isdigit():
            raise BadQuery("'cursor' is not one this API gave; pass next_cursor as it came")
        after = 0 if parts is None else int(parts[0])
        found = await self.ctx.runner.call(self.spool.list_optouts, account.id, after,
                                           limit + 1)
        page = found[:limit]
        cursor = encode_cursor(str(page[-1].id)) if len(found) > limit else None
        return JSONResponse({"optouts": [views.optout_view(o) for o in page],
                             "next_cursor": cursor})

    async def add(self, account: Account, request: Request) -> Response:
        number, reason = self._body(parse_body(await request.body()))
        new = NewOptOut(account.id, number, OptOutMethod.API, utcnow(), reason)
        optout, created = await self.ctx.runner.call(self.spool.add_optout, new)
        return JSONResponse(views.optout_view(optout), 201 if created else 200)

    async def show(self, account: Account, request: Request) -> Response:
        number = self._number(request.path_params["number"])
        found = await self.ctx.runner.call(self.spool.get_optout, account.id, number)
        if found is None:
            return _not_listed(number)
        return JSONResponse(views.optout_view(found))

    async def remove(self, account: Account, request: Request) -> Response:
        number = self._number(request.path_params["number"])
        if not await self.ctx.runner.call(self.spool.remove_optout, account.id, number):
            return _not_listed(number)
        return Response(status_code=204)

    def _body(self, body: Any) -> tuple[str, str | None]:
        return number_and_note(self.ctx, body, "reason")

    def _number(self, raw: str) -> str:
        return parse_number(self.ctx, raw)


def number_and_note(ctx: HttpContext, body: Any, note: str) -> tuple[str, str | None]:
    """A body of `number` and an optional printable `note` field (its name: an
    opt-out's reason, a consent's note), as /v1/optouts and /v1/consents take it."""
    if not isinstance(body, dict):
        raise BadQuery("the body must be a JSON object with 'number'", "invalid_field", 422)
    unknown = sorted(set(body) - {"number", note})
    if unknown:
        raise BadQuery(f"unknown field '{unknown[0]}'; allowed: number, {note}",
                       "invalid_field", 422)
    number, text = body.get("number"), body.get(note)
    if not isinstance(number, str):
        raise BadQuery("'number' is required: a string", "invalid_field", 422)
    if text is not None and (not isinstance(text, str) or len(text) > MAX_NOTE
                             or not text.isprintable()):
        raise BadQuery(f"'{note}' must be printable text of at most {MAX_NOTE} "
                       "characters", "invalid_field", 422)
    return parse_number(ctx, number), text or None


def parse_number(ctx: HttpContext, raw: str) -> str:
    """A number as intake reads it, or 422 with intake's reason."""
    try:
        return ctx.intake.number(raw)
    except Rejected as exc:
        raise BadQuery(exc.reason, exc.code, 422) from None


def parse_body(raw: bytes) -> Any:
    try:
        return parse_json(raw)
    except (ValueError, RecursionError):
        raise BadQuery("the body is not valid JSON", "invalid_json") from None


def _not_listed(number: str) -> Response:
    return error_json(404, "not_found", f"{number} is not on this account's opt-out list")
