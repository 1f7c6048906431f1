"""The one ASGI application (Starlette, served by uvicorn) that every HTTP adapter mounts
its routes on, with the request-size guard and the operational endpoints: /healthz,
/readyz and /metrics."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.accounts import Credentials
from hub.clock import utcnow
from hub.errors import HubError
from hub.intake import Intake
from hub.metrics import Metrics
from hub.ports import SchemaState
from hub.spoolcall import SpoolRunner

log = logging.getLogger(__name__)

_Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class HttpContext:
    """What HTTP adapters need from the hub, handed over by the composition root."""

    intake: Intake
    credentials: Credentials
    runner: SpoolRunner
    metrics: Metrics
    max_body_bytes: int
    max_messages_per_request: int
    timezone: str


def build_app(ctx: HttpContext, routes: Sequence[BaseRoute]) -> ASGIApp:
    ops = [
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/readyz", _readyz_for(ctx), methods=["GET"]),
        Route("/metrics", _metrics_for(ctx), methods=["GET"]),
    ]
    limit = ctx.max_body_bytes

    async def too_large(request: Request, exc: Exception) -> Response:
        return _too_large_response(limit)

    # The handler answers for bodies found too large while an endpoint streams them in.
    app = Starlette(routes=[*ops, *routes], exception_handlers={BodyTooLarge: too_large})
    return BodyLimit(app, limit)


def error_json(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _readyz_for(ctx: HttpContext) -> _Endpoint:
    async def readyz(request: Request) -> Response:
        try:
            state = await ctx.runner.call(ctx.runner.spool.schema_state)
        except HubError as exc:
            return JSONResponse({"status": "unavailable", "spool": str(exc)}, 503)
        if state is not SchemaState.CURRENT:
            return JSONResponse({"status": "unavailable", "schema": state.value}, 503)
        return JSONResponse({"status": "ready", "schema": state.value})

    return readyz


def _metrics_for(ctx: HttpContext) -> _Endpoint:
    async def metrics(request: Request) -> Response:
        totals = await ctx.runner.call(ctx.runner.spool.totals, utcnow())
        return PlainTextResponse(
            ctx.metrics.render(totals), media_type="text/plain; version=0.0.4"
        )

    return metrics


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Answers 413 as soon as a body is known to exceed the limit: at once from
    Content-Length, or while streaming a chunked body, never after reading it whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _too_large_response(self.max_bytes)(scope, receive, send)


def _too_large_response(limit: int) -> Response:
    return error_json(
        413, "body_too_large", f"the request body exceeds the limit of {limit} bytes",
        Connection="close",
    )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def parse_json(body: bytes) -> object:
    """JSON from a request body; ValueError with a readable reason if it is not."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the body is not valid JSON: {exc}") from None

