"""The JSON REST API: `POST /v1/messages` (one message, or {"messages": [...]}, with an
optional `Idempotency-Key`) and `GET /v1/messages/{id}`, authenticated by
`Authorization: Bearer <api key>`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.http.app import (
    HttpContext,
    Prompt,
    PromptRoute,
    error_json,
    parse_json,
    temporarily,
)
from adapters.http.idempotency import HEADER, Held, Keys, lost
from adapters.xml.common import stage_items
from hub import views
from hub.accounts import KeyExpired
from hub.clock import after, parse_time, utcnow
from hub.errors import AuthenticationError, Rejected, TemporaryFailure
from hub.idempotency import Answer, KeyLost
from hub.model import (
    Accepted,
    Account,
    MessageClass,
    Outcome,
    Refused,
    Source,
    Status,
    Submission,
)
from hub.ports import Committed

log = logging.getLogger(__name__)

_FIELDS = {"to", "text", "from", "client_ref", "send_at", "expires_at", "validity", "class",
           "priority"}


def routes(ctx: HttpContext) -> list[BaseRoute]:
    api = JsonApi(ctx)
    return [
        PromptRoute("/v1/messages", api.post_messages, prompt=api.prompt, methods=["POST"]),
        Route("/v1/messages/{message_id}", api.get_message, methods=["GET"]),
    ]


class JsonApi:
    def __init__(self, ctx: HttpContext) -> None:
        self.ctx = ctx
        self.keys = Keys(ctx)

    async def post_messages(self, request: Request) -> Response:
        try:
            account = await self._authenticate(request)
            raw = await request.body()
        except AuthenticationError as exc:
            return _unauthorized(exc)
        except TemporaryFailure as exc:  # a key not cached, and no spool to check it in
            return self._unavailable(exc)
        read = self._read(raw)
        if isinstance(read, Response):
            return read
        single, items = read
        held = None
        if HEADER in request.headers:
            try:
                claimed = await self.keys.claim(account, request, raw)
            except TemporaryFailure as exc:
                return self._unavailable(exc)
            if isinstance(claimed, Response):
                return claimed
            held = claimed
        respond = _single_response if single else _batch_response
        try:
            outcomes = await self._submit(account, items, held, respond)
        except KeyLost as exc:  # its hold ran out and a repeat took the key: nothing stored
            return lost(exc)
        except TemporaryFailure as exc:
            if held is not None:
                await self.keys.release(held)
            return self._unavailable(exc)
        except BaseException:
            if held is not None:
                await self.keys.release(held)
            raise
        self.ctx.unavailable.cleared()
        self._count(outcomes)
        return respond(outcomes)

    def prompt(self, request: Request, body: bytes) -> Prompt | None:
        """`post_messages`' common case staged at once (adapters/http/hot.py): a key in
        the credential cache, no Idempotency-Key (claimed in the spool first) and a body
        of messages to take. Anything else is declined, for `post_messages` to answer in
        its own words."""
        if HEADER in request.headers:
            return None
        key = _bearer(request)
        account = None if key is None else self.ctx.credentials.cached_key(key)
        if account is None:
            return None
        read = self._read(body)
        if isinstance(read, Response):
            return None
        single, items = read
        respond = _single_response if single else _batch_response
        staged = stage_items(self.ctx, account, _parsed(items, self.ctx.timezone),
                             Source.REST)

        def answer_with(done: Sequence[Committed] | Exception) -> Response:
            if isinstance(done, TemporaryFailure):
                return self._unavailable(done)
            if isinstance(done, Exception):
                raise done  # a bug: answered 500 and logged, as the endpoint's would be
            self.ctx.unavailable.cleared()
            return respond(staged.finish(done))

        return Prompt(staged.ready, answer_with)

    def _read(self, raw: bytes) -> tuple[bool, list[Any]] | Response:
        """(whether the body is one message, its message objects), or the answer to a
        body that is not JSON or holds no messages, or too many."""
        try:
            body = parse_json(raw)
        except ValueError as exc:
            return error_json(400, "invalid_json", str(exc))
        except RecursionError:  # the JSON scanner's own depth guard: input, not a bug
            return error_json(400, "invalid_json", "the body is not valid JSON: nested too "
                              "deeply")
        single = not (isinstance(body, dict) and "messages" in body)
        items = [body] if single else body["messages"]  # type: ignore[index]
        if not isinstance(items, list) or not items:
            return error_json(400, "invalid_request", "'messages' must be a non-empty list")
        if len(items) > self.ctx.max_messages_per_request:
            return error_json(
                413, "too_many_messages",
                f"{len(items)} messages in one request; the limit is "
                f"{self.ctx.max_messages_per_request}",
            )
        return single, items

    async def _submit(self, account: Account, items: list[Any], held: Held | None,
                      respond: Callable[[list[Outcome]], Response]) -> list[Outcome]:
        parsed = _parsed(items, self.ctx.timezone)
        valid = [p for p in parsed if isinstance(p, Submission)]

        def merged(done: Iterable[Outcome]) -> list[Outcome]:
            answers = iter(done)
            return [p if isinstance(p, Refused) else next(answers) for p in parsed]

        def answer(done: list[Outcome]) -> Answer:
            # Made in the messages' transaction: the answer kept for the key is the one
            # this request gets, byte for byte.
            response = respond(merged(done))
            return Answer(response.status_code, bytes(response.body),
                          response.headers["content-type"])

        seal = None if held is None else held.seal(answer)
        return merged(await self.ctx.intake.submit(account, Source.REST, valid, seal=seal))

    def _count(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if isinstance(outcome, Refused):
                self.ctx.metrics.refused[outcome.code] += 1
            elif not outcome.duplicate:
                self.ctx.metrics.accepted[Source.REST.value] += 1

    def _unavailable(self, exc: TemporaryFailure) -> Response:
        words, headers = temporarily(self.ctx, exc)
        return error_json(503, "unavailable", words, **headers)

    async def get_message(self, request: Request) -> Response:
        try:
            account = await self._authenticate(request)
            return await self._message(account, request.path_params["message_id"])
        except AuthenticationError as exc:
            return _unauthorized(exc)
        except TemporaryFailure as exc:
            return self._unavailable(exc)

    async def _message(self, account: Account, message_id: str) -> Response:
        spool = self.ctx.runner.spool
        message = await self.ctx.runner.call(spool.get_message, message_id)
        if message is None or message.account_id != account.id:
            return error_json(404, "not_found", f"no message '{message_id}' in this account")
        events = await self.ctx.runner.call(spool.events, message_id)
        return JSONResponse(views.message_view(message, events))

    async def _authenticate(self, request: Request) -> Account:
        key = _bearer(request)
        if key is None:
            raise AuthenticationError("send 'Authorization: Bearer <api key>'")
        return await self.ctx.credentials.by_api_key(key)


def _bearer(request: Request) -> str | None:
    """The API key of an `Authorization: Bearer <key>` header, if the request has one."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


def _parsed(items: list[Any], zone: str) -> list[Submission | Refused]:
    """Each message object read, or refused where it is malformed, in order."""
    parsed: list[Submission | Refused] = []
    for item in items:
        try:
            parsed.append(submission_from_json(item, zone))
        except Rejected as exc:
            parsed.append(Refused(exc.code, exc.reason))
    return parsed


_CLASSES = {c.value: c for c in MessageClass}


def submission_from_json(item: Any, zone: str) -> Submission:
    """One JSON message object to a Submission; Rejected('invalid_field') if malformed."""
    if not isinstance(item, dict):
        raise Rejected("invalid_field", "each message must be a JSON object")
    if not item.keys() <= _FIELDS:
        unknown = sorted(set(item) - _FIELDS)
        raise Rejected("invalid_field", f"unknown field '{unknown[0]}'; allowed: "
                       + ", ".join(sorted(_FIELDS)))
    to, text = item.get("to"), item.get("text")
    if type(to) is not str or type(text) is not str:  # the common case in one test
        to, text = _string(item, "to", required=True), _string(item, "text", required=True)
    if len(item) == 2:  # just "to" and "text": everything else is its default
        return Submission(to or "", text or "")
    send_at = _time(item, "send_at", zone)
    expires_at = _time(item, "expires_at", zone)
    if "validity" in item:
        expires_at = _validity(item["validity"], send_at)
    message_class = _CLASSES.get(item.get("class", MessageClass.TRANSACTIONAL.value))
    if message_class is None:
        raise Rejected("invalid_field", "'class' must be 'transactional' or 'marketing'")
    priority = item.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise Rejected("invalid_field", "'priority' must be a whole number from 0 to 9")
    return Submission(
        to=to or "", text=text or "", sender=_string(item, "from"),
        client_ref=_string(item, "client_ref"), send_at=send_at, expires_at=expires_at,
        message_class=message_class, priority=priority,
    )


def _string(item: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = item.get(name)
    if value is None:
        if required:
            raise Rejected("invalid_field", f"'{name}' is required")
        return None
    if not isinstance(value, str):
        raise Rejected("invalid_field", f"'{name}' must be a string")
    return value


def _time(item: dict[str, Any], name: str, zone: str) -> datetime | None:
    value = _string(item, name)
    return None if value is None else parse_time(value, zone)


def _validity(value: Any, send_at: datetime | None) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise Rejected("invalid_field", "'validity' must be a positive number of seconds")
    return after(send_at or utcnow(), value)


def _single_response(outcomes: list[Outcome]) -> Response:
    outcome = outcomes[0]
    if isinstance(outcome, Refused):
        status = 402 if outcome.code == "insufficient_credit" else 422
        return error_json(status, outcome.code, outcome.reason)
    return JSONResponse(outcome_json(outcome), 202)


def _batch_response(outcomes: list[Outcome]) -> Response:
    accepted = sum(isinstance(o, Accepted) for o in outcomes)
    body = {
        "accepted": accepted,
        "refused": len(outcomes) - accepted,
        "results": [outcome_json(o) for o in outcomes],
    }
    return JSONResponse(body, 202 if accepted else 422)


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    if isinstance(outcome, Refused):
        return {"accepted": False, "error": {"code": outcome.code, "message": outcome.reason}}
    # A batch's answers differ mostly in their ids: the rest is made once per kind and
    # copied (a dict copy keeps key order, and "id" keeps its place when set).
    kind = (outcome.status, outcome.segments, outcome.cost, outcome.duplicate)
    template = _ANSWERS.get(kind)
    if template is None:
        if len(_ANSWERS) >= _MAX_ANSWERS:
            _ANSWERS.clear()
        template = _ANSWERS[kind] = {
            "accepted": True,
            "id": "",
            "status": outcome.status.value,
            "state": outcome.status.public.value,
            "segments": outcome.segments,
            "cost": views.money(outcome.cost),
            "duplicate": outcome.duplicate,
        }
    answer = template.copy()
    answer["id"] = outcome.message_id
    return answer


# Statuses x segment counts x prices in use: a handful; cleared if prices ever sprawl.
_ANSWERS: dict[tuple[Status, int, Decimal, bool], dict[str, Any]] = {}
_MAX_ANSWERS = 1024


def _unauthorized(exc: AuthenticationError) -> Response:
    code = "key_expired" if isinstance(exc, KeyExpired) else "unauthorized"
    return error_json(401, code, str(exc), **{"WWW-Authenticate": 'Bearer realm="smshub"'})
