"""Fake SMS providers speaking their documented HTTP APIs: SMSPortal REST, BulkSMS EAPI
send_sms and Clickatell's archived HTTP sendmsg. Each is a Starlette app served by
uvicorn on 127.0.0.1:0 in its own thread, records what it was sent, and can be scripted
to fail, stall or throttle.
Their callbacks are sent by the tests themselves, in each provider's documented shape."""

from __future__ import annotations

import asyncio
import base64
import itertools
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from adapters.http.server import bind


@dataclass(frozen=True)
class Reply:
    """A scripted answer to the next send request: after `delay` seconds, this status,
    body and headers (status 0: after the delay, answer as the provider normally would)."""

    status: int = 0
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    """One send request as the provider received it."""

    at: float  # time.monotonic()
    headers: dict[str, str]
    body: Any  # parsed JSON, or the form as a dict


class FakeServer:
    """A Starlette app under uvicorn on its own loop and thread, on 127.0.0.1:0."""

    def __init__(self, app: Starlette) -> None:
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-provider",
                                        daemon=True)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        sock = bind("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._app, lifespan="off", access_log=False, log_config=None)
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        self._server = server
        self._task = asyncio.create_task(server.main_loop())

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _stop(self) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task
        await self._server.shutdown()


class Provider:
    """What every fake shares: the script of failures and the record of requests."""

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.requests: list[Seen] = []
        self.refuse: dict[str, str] = {}  # number -> the provider's reason
        self.url = ""

    async def scripted(self) -> Response | None:
        if not self.script:
            return None
        reply = self.script.popleft()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if not reply.status:
            return None
        return Response(reply.body, reply.status, headers=dict(reply.headers))

    def saw(self, request: Request, body: Any) -> None:
        self.requests.append(Seen(time.monotonic(), dict(request.headers), body))


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def latin1_form(request: Request) -> dict[str, str]:
    """A form as BulkSMS reads it: ISO-8859-1 values, percent-encoded."""
    return dict(parse_qsl((await request.body()).decode("ascii"), encoding="iso-8859-1",
                          keep_blank_values=True))


class SmsPortal(Provider):
    """SMSPortal REST: GET /v1/Authentication (Basic clientId:secret) gives a JWT;
    POST /v1/bulkmessages takes up to 100 messages with it and answers with one EventId.
    Our faults name the destination (the document shows only an empty Faults list)."""

    client_id = "portal-client"
    secret = "portal-secret-4711"

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[str] = []
        self.events = itertools.count(12345678901)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/v1/Authentication", self.authenticate, methods=["GET"]),
            Route("/v1/bulkmessages", self.bulk, methods=["POST"]),
        ])

    async def authenticate(self, request: Request) -> Response:
        if request.headers.get("authorization") != basic(self.client_id, self.secret):
            return JSONResponse({"errorMessage": "Unauthorized"}, 401)
        token = f"jwt-{len(self.tokens) + 1}"
        self.tokens.append(token)
        return JSONResponse({"token": token, "schema": "JWT", "expiresInMinutes": 1440})

    async def bulk(self, request: Request) -> Response:
        if request.headers.get("authorization") not in [f"Bearer {t}" for t in self.tokens]:
            return JSONResponse({"errorMessage": "Unauthorized"}, 401)
        body = await request.json()
        self.saw(request, body)
        scripted = await self.scripted()
        if scripted is not None:
            return scripted
        messages = body.get("Messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not 1 <= len(messages) <= 100 or not all(
                isinstance(m.get("Content"), str) and str(m.get("Destination", "")).isdigit()
                for m in messages):
            return JSONResponse({"errorMessage": "Invalid request"}, 400)
        faults = [{"Destination": m["Destination"], "Reason": self.refuse[m["Destination"]]}
                  for m in messages if m["Destination"] in self.refuse]
        count = len(messages)
        return JSONResponse({
            "Cost": count, "RemainingBalance": 1500, "EventId": next(self.events),
            "Sample": messages[0]["Content"], "Messages": count, "Parts": count,
            "CostBreakDown": [{"Network": "Local", "Cost": count, "Quantity": count}],
            "ErrorReport": {"NoNetwork": 0, "Duplicates": 0, "OptedOuts": 0, "Faults": faults},
        })


class BulkSms(Provider):
    """BulkSMS EAPI: POST .../eapi/submission/send_sms/2/2.0 with username, password,
    message, msisdn[, sender, want_report]; answers `status_code|description|batch_id`."""

    username = "bulk-user"
    password = "bulk-pass-0815"

    def __init__(self) -> None:
        super().__init__()
        self.batches = itertools.count(71070172)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/eapi/submission/send_sms/2/2.0", self.send_sms, methods=["POST"]),
        ])

    async def send_sms(self, request: Request) -> Response:
        form = await latin1_form(request)
        self.saw(request, form)
        scripted = await self.scripted()
        if scripted is not None:
            return scripted
        if (form.get("username"), form.get("password")) != (self.username, self.password):
            return PlainTextResponse("23|invalid credentials")
        number = form.get("msisdn", "")
        if not number.isdigit() or not form.get("message"):
            return PlainTextResponse("24|invalid msisdn or message")
        if number in self.refuse:
            return PlainTextResponse(f"{self.refuse[number]}")
        return PlainTextResponse(f"0|IN_PROGRESS|{next(self.batches)}")


class Clickatell(Provider):
    """Clickatell's archived HTTP API: POST /http/sendmsg with api_id, user, password, to,
    text[, from, climsgid]; answers `ID: <apimsgid>` or `ERR: <code>, <text>`."""

    api_id = "3388480"
    user = "click-user"
    password = "click-pass-42"

    def __init__(self) -> None:
        super().__init__()
        self.ids = itertools.count(1)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/http/sendmsg", self.sendmsg, methods=["POST"])])

    async def sendmsg(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        self.saw(request, form)
        scripted = await self.scripted()
        if scripted is not None:
            return scripted
        if (form.get("api_id"), form.get("user"), form.get("password")) != (
                self.api_id, self.user, self.password):
            return PlainTextResponse("ERR: 001, Authentication failed")
        if form.get("to") in self.refuse:
            return PlainTextResponse(f"ERR: {self.refuse[form['to']]}")
        return PlainTextResponse(f"ID: {next(self.ids):032x}")
