"""`Idempotency-Key` on the JSON API's POSTs (P12): a repeat with the same key and body
gets the first answer again (status and body, `Idempotent-Replayed: true`), one with
another body 422, one while the first still runs 409. Keys are the account's own and are
kept `[http] idempotency_window` seconds. `POST /v1/messages` keeps its answer in the
transaction of its messages (a Seal through intake); other POSTs keep it just after."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from adapters.http.app import HttpContext, error_json
from adapters.http.pages import BadQuery, Handler
from hub.clock import utcnow
from hub.errors import Rejected, TemporaryFailure
from hub.idempotency import (
    Answer,
    KeyLost,
    KeyRequest,
    KeyState,
    Seal,
    check_key,
    fingerprint,
)
from hub.model import Account, Outcome

HEADER = "idempotency-key"
REPLAYED = "Idempotent-Replayed"


@dataclass(frozen=True, slots=True)
class Held:
    """A key this request holds while it runs."""

    request: KeyRequest
    token: str

    def seal(self, answer: Callable[[list[Outcome]], Answer]) -> Seal:
        return Seal(self.request.account_id, self.request.key, self.token,
                    lambda outcomes: answer(list(outcomes)))


class Keys:
    def __init__(self, ctx: HttpContext) -> None:
        self.ctx = ctx
        self.window = timedelta(seconds=ctx.idempotency_window)

    async def claim(self, account: Account, request: Request, content: bytes,
                    content_type: str | None = None) -> Held | Response | None:
        """Hold the request's key (None: it has none), or the answer it gets instead: the
        first answer replayed, 409 while that runs, 422 for another request, 400 for a
        key that is no key. `content` is what makes two requests the same: the body, or
        what a multipart body carries."""
        raw = request.headers.get(HEADER)
        if raw is None:
            return None
        try:
            key = check_key(raw)
        except Rejected as exc:
            return error_json(400, exc.code, exc.reason)
        kind = content_type if content_type is not None else _media_type(request)
        key_request = KeyRequest(account.id, key, fingerprint(
            request.method, request.url.path, kind, content), utcnow(), self.window)
        claim = await self.ctx.runner.call(self.ctx.runner.spool.claim_key, key_request)
        if claim.state is KeyState.NEW:
            return Held(key_request, claim.token)
        if claim.state is KeyState.REPLAY and claim.answer is not None:
            return replay(claim.answer)
        if claim.state is KeyState.MISMATCH:
            return error_json(422, "idempotency_key_reused", "this Idempotency-Key was used "
                              "for another request; use a new key for a new request")
        return in_use()

    async def finish(self, held: Held, response: Response) -> Response:
        """Keep the answer; a 5xx (the hub failed, or cannot take it for now) is not
        kept: the key is given up, and a repeat runs the request again."""
        if response.status_code >= 500:
            await self.release(held)
            return response
        answer = Answer(response.status_code, bytes(response.body),
                        response.headers.get("content-type", "application/json"),
                        response.headers.get("location"))
        await self.ctx.runner.call(self.ctx.runner.spool.finish_key, held.request.account_id,
                                   held.request.key, held.token, answer)
        return response

    async def release(self, held: Held) -> None:
        # A spool that cannot take it now leaves the key held until its lease ends; a
        # repeat then runs the request again.
        with contextlib.suppress(TemporaryFailure):
            await self.ctx.runner.call(self.ctx.runner.spool.release_key,
                                       held.request.account_id, held.request.key, held.token)


def idempotent(ctx: HttpContext, handler: Handler) -> Handler:
    """A guarded POST endpoint that honours `Idempotency-Key` around `handler`."""
    keys = Keys(ctx)

    async def endpoint(account: Account, request: Request) -> Response:
        held = await keys.claim(account, request, await request.body())
        if not isinstance(held, Held):
            return held if held is not None else await handler(account, request)
        try:
            response = await handler(account, request)
        except BadQuery as exc:  # a refusal is the answer: kept like any other
            response = error_json(exc.status, exc.code, str(exc))
        except BaseException:
            await keys.release(held)
            raise
        return await keys.finish(held, response)

    return endpoint


def replay(answer: Answer) -> Response:
    headers = {REPLAYED: "true"}
    if answer.location is not None:
        headers["Location"] = answer.location
    return Response(answer.body, answer.status, headers=headers, media_type=answer.media_type)


def in_use() -> Response:
    return error_json(409, "idempotency_key_in_use", "a request with this Idempotency-Key "
                      "is still being processed; repeat it once that one is answered")


def lost(exc: KeyLost) -> Response:
    return error_json(409, exc.code, exc.reason)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()
