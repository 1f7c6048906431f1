"""The one ASGI application (Starlette, served by uvicorn) that every HTTP adapter mounts
its routes on, with the request-size guard and the operational endpoints: /healthz,
/readyz and /metrics."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.accounts import Credentials
from hub.clock import utcnow
from hub.consents import ConsentStore
from hub.errors import HubError, TemporaryFailure
from hub.faultlog import FaultLog
from hub.intake import Intake
from hub.metrics import Metrics
from hub.model import NewMessage
from hub.nodes import NodeStore
from hub.operators import AdminStore
from hub.ports import (
    AccountStore,
    BatchStore,
    Committed,
    IdempotencyStore,
    InboundStore,
    MailStore,
    MessageStore,
    OperatorStore,
    OptOutStore,
    SchemaAdmin,
    SchemaState,
    WebhookStore,
)
from hub.spoolcall import SpoolThreads
from hub.webhooks import Network

log = logging.getLogger(__name__)

# An endpoint: a Request in, a whole Response out (never a streamed one on the hot routes).
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(slots=True)
class Prompt:
    """A request its endpoint staged at once (a Prompter's answer): the messages to
    commit, and the answer once they are, or once the exception stopped them."""

    ready: list[NewMessage]
    answer: Callable[[Sequence[Committed] | Exception], Response]


# An endpoint's common case taken without a task: a plain request (its whole body at
# hand) staged now, or None for the endpoint to take as usual (adapters/http/hot.py).
# It may not await, so it declines whatever needs a spool read or a lookup first.
Prompter = Callable[[Request, bytes], Prompt | None]


class PromptRoute(Route):
    """A route whose endpoint has a Prompter for the HTTP protocol's hot routes."""

    def __init__(self, path: str, endpoint: Endpoint, *, prompt: Prompter,
                 methods: Sequence[str]) -> None:
        super().__init__(path, endpoint, methods=list(methods))
        self.prompt = prompt


class HttpStore(AccountStore, MessageStore, InboundStore, OptOutStore, WebhookStore,
                SchemaAdmin, BatchStore, OperatorStore, IdempotencyStore, ConsentStore,
                MailStore, AdminStore, NodeStore, Protocol):
    """The spool roles behind the HTTP listener: readiness, metrics, messages and
    replies read back for the JSON API and the XML dialects, opt-out lists, batches,
    messages listed and cancelled, idempotency keys, consents, and the portal's
    email-to-SMS settings and operators' pages (with the nodes running)."""


@dataclass(frozen=True, slots=True)
class HttpContext:
    """What HTTP adapters need from the hub, handed over by the composition root."""

    intake: Intake
    credentials: Credentials
    runner: SpoolThreads[HttpStore]
    metrics: Metrics
    max_body_bytes: int
    max_messages_per_request: int
    timezone: str
    # Where the hub writes its files (FTP homes, keys): readiness checks it is writable.
    data_dir: Path | None = None
    # Where webhook endpoints may point besides the public internet ([webhooks]
    # allow_networks), and how long a rotated secret still signs beside the new one.
    webhook_networks: Sequence[Network] = ()
    webhook_secret_overlap: float = 86_400.0
    # Seconds the answer of a POST with an Idempotency-Key is kept ([http]).
    idempotency_window: float = 86_400.0
    # Where numbers without a country code are ([hub] default_region): batch files.
    region: str = "ZA"
    # Requests the spool cannot take: logged once per fault, not once per request.
    unavailable: FaultLog = field(
        default_factory=lambda: FaultLog(log, "intake unavailable", "intake"))


@dataclass(frozen=True, slots=True)
class BodyRule:
    """A body limit of its own for paths under `prefix` (e.g. large XML batches), answered
    in that protocol's own format."""

    prefix: str
    max_bytes: int
    respond: Callable[[int], Response]

    def response(self) -> Response:
        return self.respond(self.max_bytes)


def _rule_for(rules: Sequence[BodyRule], default: int, path: str) -> BodyRule:
    for rule in rules:
        if path == rule.prefix or path.startswith(rule.prefix.rstrip("/") + "/"):
            return rule
    return BodyRule("", default, _too_large_response)


def build_app(
    ctx: HttpContext, routes: Sequence[BaseRoute], body_rules: Sequence[BodyRule] = ()
) -> ExactPaths:
    ops = [
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/readyz", _readyz_for(ctx), methods=["GET"]),
        Route("/metrics", _metrics_for(ctx), methods=["GET"]),
    ]
    limit, rules = ctx.max_body_bytes, tuple(body_rules)

    async def too_large(request: Request, exc: Exception) -> Response:
        return _rule_for(rules, limit, request.url.path).response()

    # The handler answers for bodies found too large while an endpoint streams them in;
    # the router's 404 and 405 are problems too on the JSON API. (A body too slow is
    # the HTTP protocol's to answer: guards.HeaderDeadline.)
    app = Starlette(routes=[*ops, *routes],
                    exception_handlers={BodyTooLarge: too_large, HTTPException: _http_error})
    return ExactPaths(BodyLimit(app, limit, rules), [*ops, *routes], limit, rules)


class ExactPaths:
    """Serves routes without path parameters straight from a dict, before BodyLimit and
    Starlette's router and middleware layers: on the hot `POST /v1/messages` and
    `/cgi-bin/sendsms` those layers cost more than the message itself. The body is read
    here first, under the same limit as BodyLimit's (413 in the path's own format), and
    the endpoint's Request holds it. Anything else goes to `app` unchanged."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute],
                 max_bytes: int = 1 << 20, rules: Sequence[BodyRule] = ()) -> None:
        self.app = app
        self.table: dict[tuple[str, str], tuple[Endpoint, BodyRule]] = {}
        self.prompts: dict[tuple[str, str], Prompter] = {}
        for route in routes:
            if isinstance(route, Route) and "{" not in route.path:
                rule = _rule_for(rules, max_bytes, route.path)
                for method in route.methods or ():
                    self.table[(method, route.path)] = (route.endpoint, rule)
                    if isinstance(route, PromptRoute):
                        self.prompts[(method, route.path)] = route.prompt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None
        if scope["type"] == "http":
            found = self.table.get((scope["method"], scope["path"]))
        if found is None:
            await self.app(scope, receive, send)
            return
        endpoint, rule = found
        declared = _content_length(scope)
        try:
            if declared is not None and declared > rule.max_bytes:
                raise BodyTooLarge
            body = await _read_body(receive, rule.max_bytes)
        except BodyTooLarge:
            await rule.response()(scope, receive, send)
            return
        except ClientDisconnect:
            return  # gone, or its body too slow (the protocol answered 408)
        response = await call_endpoint(endpoint, Request(scope, receive), body)
        await response(scope, receive, send)


async def call_endpoint(endpoint: Endpoint, request: Request, body: bytes) -> Response:
    """`endpoint`'s answer to `request`, whose whole `body` was read under its path's
    limit (by ExactPaths, or by the protocol on the hot routes: adapters/http/hot.py);
    500 if the endpoint fails."""
    # Starlette's Request reads its body from here once it has one (body(), form(),
    # stream()).
    request._body = body
    try:
        return await endpoint(request)
    except Exception:
        return internal_error(request.scope["path"])


def internal_error(path: str) -> Response:
    """The answer to an endpoint's (or a Prompter's answer's) failure, logged: a bug."""
    log.exception("unhandled error in %s", path, extra={"action": "http"})
    return error_json(500, "internal_error", "the hub failed to handle the request")


async def _read_body(receive: Receive, limit: int) -> bytes:
    """A request's whole body, or BodyTooLarge as soon as it is known to exceed `limit`;
    ClientDisconnect if the client went away first."""
    message = await receive()
    chunks: list[bytes] = []
    seen = 0
    while True:
        if message["type"] != "http.request":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        seen += len(chunk)
        if seen > limit:
            raise BodyTooLarge
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)
        message = await receive()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if not request.url.path.startswith("/v1/"):
        return PlainTextResponse(exc.detail, exc.status_code, headers=headers)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_json(exc.status_code, code, str(exc.detail), **headers)


def temporarily(ctx: HttpContext, exc: TemporaryFailure) -> tuple[str, dict[str, str]]:
    """The words and headers of a 503 for a spool that cannot take work for now: what is
    wrong (never the driver's text) and when to try again. Logged once per fault."""
    ctx.unavailable.failed(str(exc))
    return f"{exc.reason}; try again later", {"Retry-After": str(exc.retry_after)}


PROBLEM_TYPE = "urn:smshub:problem:"  # + the code: one type per code (README)


class ProblemResponse(JSONResponse):
    media_type = "application/problem+json"


def problem(status: int, code: str, detail: str) -> dict[str, object]:
    """An RFC 9457 problem: `code` is the stable machine-readable name (the codes the
    API has always had); `type` is made from it, `title` names it in words."""
    return {"type": PROBLEM_TYPE + code, "title": code.replace("_", " ").capitalize(),
            "status": status, "detail": detail, "code": code}


def error_json(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    """Every JSON API error: an `application/problem+json` body (RFC 9457)."""
    return ProblemResponse(problem(status, code, message), status, headers=headers)


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _readyz_for(ctx: HttpContext) -> Endpoint:
    faults = FaultLog(log, "not ready", "readyz")

    async def readyz(request: Request) -> Response:
        # Unauthenticated: a generic reason only. The details (the driver's text with
        # hosts, ports or paths) go to the log, once while they stay the same.
        spool = ctx.runner.spool
        try:
            state = await ctx.runner.call(spool.schema_state)
        except HubError as exc:
            faults.failed(str(exc))
            return _not_ready("the spool is unavailable")
        if state is not SchemaState.CURRENT:
            faults.failed(f"the spool's schema is {state.value}")
            return _not_ready(f"the spool's schema is {state.value}")
        try:  # a read-only spool answers reads but no write: not ready
            await ctx.runner.call(spool.check_writable)
        except HubError as exc:
            faults.failed(str(exc))
            return _not_ready("the spool cannot be written")
        if ctx.data_dir is not None and not os.access(ctx.data_dir, os.W_OK):
            faults.failed(f"the data directory {ctx.data_dir} is not writable")
            return _not_ready("the data directory cannot be written")
        faults.cleared()
        return JSONResponse({"status": "ready", "schema": state.value})

    return readyz


def _not_ready(reason: str) -> Response:
    return JSONResponse({"status": "unavailable", "reason": reason}, 503)


def _metrics_for(ctx: HttpContext) -> Endpoint:
    async def metrics(request: Request) -> Response:
        totals = await ctx.runner.call(ctx.runner.spool.totals, utcnow())
        return PlainTextResponse(
            ctx.metrics.render(totals), media_type="text/plain; version=0.0.4"
        )

    return metrics


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Answers 413 as soon as a body is known to exceed the limit (the path's BodyRule, if
    any): at once from Content-Length, or while streaming a chunked body, never after
    reading it whole. A body that does not arrive in time is cut off by the HTTP
    protocol (guards.HeaderDeadline): the app's read of it ends as a disconnect."""

    def __init__(self, app: ASGIApp, max_bytes: int, rules: Sequence[BodyRule] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.rules = tuple(rules)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = _rule_for(self.rules, self.max_bytes, scope["path"]).max_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._too_large(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
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
        except ClientDisconnect:
            pass  # gone, or its body too slow (the protocol answered 408)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        rule = _rule_for(self.rules, self.max_bytes, scope["path"])
        await rule.response()(scope, receive, send)


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

