"""`GET /v1/messages` (the account's messages, newest first, filtered and paged by an
opaque cursor) and `POST /v1/messages/{id}/cancel` (an unsent message cancelled, its
credit refunded)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.http.app import HttpContext, error_json
from adapters.http.idempotency import idempotent
from adapters.http.pages import BadQuery, decode_cursor, encode_cursor, guarded, limit_of
from hub import views
from hub.clock import parse_time, utcnow
from hub.errors import Rejected
from hub.model import Account, Message, PublicState, Status
from hub.ports import MessageFilter

# Above every message id (ULIDs start 0-7 until the year 10889): the first page's bound.
_ABOVE_ALL = "8" + "0" * 25
_STATES = {s.value: s for s in PublicState}
# What cancel can stop: not yet handed to a carrier (spool CLAIMABLE).
_CANCELLABLE = (Status.ACCEPTED, Status.SCHEDULED, Status.QUEUED)


def routes(ctx: HttpContext) -> list[BaseRoute]:
    api = MessageApi(ctx)
    return [
        Route("/v1/messages", guarded(ctx, api.list), methods=["GET"]),
        Route("/v1/messages/{message_id}/cancel", guarded(ctx, idempotent(ctx, api.cancel)),
              methods=["POST"]),
    ]


class MessageApi:
    def __init__(self, ctx: HttpContext) -> None:
        self.ctx = ctx

    async def list(self, account: Account, request: Request) -> Response:
        limit = limit_of(request)
        query = self._filter(account, request, limit + 1)
        spool = self.ctx.runner.spool
        # One more than asked for tells whether another page follows.
        found = await self.ctx.runner.call(spool.list_messages, query)
        page = found[:limit]
        cursor = encode_cursor(page[-1].id) if len(found) > limit else None
        return JSONResponse({"messages": [summary(m) for m in page], "next_cursor": cursor})

    def _filter(self, account: Account, request: Request, limit: int) -> MessageFilter:
        params = request.query_params
        parts = decode_cursor(request, 1)
        return MessageFilter(
            account.id, limit=limit, statuses=_statuses(params.get("status")),
            since=self._time(params.get("since"), "since"),
            until=self._time(params.get("until"), "until"),
            batch_id=params.get("batch_id") or None,
            recipient=self._number(params.get("recipient")),
            client_ref=params.get("client_ref") or None,
            before_id=_ABOVE_ALL if parts is None else parts[0],
        )

    def _time(self, text: str | None, name: str) -> datetime | None:
        if not text:
            return None
        try:
            return parse_time(text, self.ctx.timezone)
        except Rejected as exc:
            raise BadQuery(f"'{name}': {exc.reason}", "invalid_time") from None

    def _number(self, text: str | None) -> str | None:
        if not text:
            return None
        try:
            return self.ctx.intake.number(text)
        except Rejected as exc:
            raise BadQuery(f"'recipient': {exc.reason}", exc.code) from None

    async def cancel(self, account: Account, request: Request) -> Response:
        message_id = request.path_params["message_id"]
        spool, call = self.ctx.runner.spool, self.ctx.runner.call
        message = await call(spool.get_message, message_id)
        if message is None or message.account_id != account.id:
            return error_json(404, "not_found", f"no message '{message_id}' in this account")
        cancelled = message.status in _CANCELLABLE and await call(
            spool.cancel, [message_id], None, utcnow()) == 1
        after = await call(spool.get_message, message_id)
        assert after is not None  # messages are never deleted
        if not cancelled:
            return error_json(409, "not_cancellable", f"message '{message_id}' is "
                              f"{after.status.value}: only an unsent message (accepted, "
                              "scheduled or queued) can be cancelled")
        return JSONResponse({**summary(after), "refunded": views.money(after.cost)})


def summary(message: Message) -> dict[str, Any]:
    """A message as listed: its view without the event history (GET /v1/messages/{id})."""
    view = views.message_view(message, [])
    del view["events"]
    return view


def _statuses(text: str | None) -> tuple[Status, ...]:
    """`status`: statuses or public states (pending, delivered, failed), comma-separated."""
    if not text:
        return ()
    found: list[Status] = []
    for name in (part.strip().lower() for part in text.split(",")):
        if name in _STATES:
            found += [s for s in Status if s.public is _STATES[name]]
        elif name in Status.__members__.values():
            found.append(Status(name))
        else:
            raise BadQuery(f"'status': unknown status '{name[:40]}'; use "
                           + ", ".join([*_STATES, *(s.value for s in Status)]))
    return tuple(dict.fromkeys(found))
