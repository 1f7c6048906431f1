"""The HTTP listener as a service: the JSON and XML routes in one Starlette app, served
by uvicorn on a socket bound here (port 0 picks a free one), stopped gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Sequence

import uvicorn
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from adapters.http import rest
from adapters.http.app import HttpContext, build_app
from adapters.http.dialects.paths import CREDENTIALS_ALLOWED, KANNEL, WINSMS
from adapters.http.guards import NoCredentialsInUrl
from adapters.http.hot import hot_routes
from adapters.xml import routing as xml_routing
from adapters.xml.native import XmlSettings
from hub.sections import HttpSection

log = logging.getLogger(__name__)


# The routes the HTTP protocol answers itself when a request is plain (adapters/http/
# hot.py): sending messages, one request each, as the JSON API's and the dialects'
# clients do. Their endpoints answer whole responses.
HOT = frozenset({
    ("POST", "/v1/messages"),
    *((method, path) for method in ("GET", "POST")
      for path in (KANNEL[0], "/http/sendmsg", WINSMS[2])),
})


class HttpServer:
    """uvicorn driven from our own event loop: start() returns once it listens."""

    name = "http"

    def __init__(self, ctx: HttpContext, xml: XmlSettings, settings: HttpSection,
                 routes: Sequence[BaseRoute] = (), *, api: bool = True) -> None:
        self._ctx = ctx
        self._routes = tuple(routes)  # other adapters' routes (carriers' callbacks)
        # False: no JSON or XML API, only health, metrics and `routes` (a dispatch node).
        self._api = api
        self._xml = xml
        self._settings = settings
        self._host = settings.host
        self._port = settings.port
        self.port: int | None = None
        self._server: uvicorn.Server | None = None
        # The application served, once started: tests list its routes against the spec.
        self.app: ASGIApp | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        api = ([*rest.routes(self._ctx), *xml_routing.routes(self._ctx, self._xml)]
               if self._api else [])
        exact = build_app(self._ctx, [*api, *self._routes], xml_routing.body_rules(self._xml))
        app = NoCredentialsInUrl(exact)
        self.app = app
        hot = {(method.encode(), path.encode()):
               (endpoint, rule.max_bytes, exact.prompts.get((method, path)))
               for (method, path), (endpoint, rule) in exact.table.items()
               if (method, path) in HOT}
        sock = bind(self._host, self._port)
        self.port = sock.getsockname()[1]
        s = self._settings
        # uvicorn times out neither headers nor bodies: our protocol (guards.py's
        # HeaderDeadline, under hot.py's HotRoutes) does. Past max_connections (open
        # connections or requests in flight) uvicorn answers 503.
        config = uvicorn.Config(
            app, lifespan="off", access_log=False, log_config=None, server_header=False,
            timeout_keep_alive=s.keep_alive_timeout, proxy_headers=False,
            http=hot_routes(s.header_timeout, s.body_timeout, hot, CREDENTIALS_ALLOWED,
                            self._ctx.intake.commit_soon),
            limit_concurrency=s.max_connections,
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        self._server = server
        self._task = asyncio.create_task(server.main_loop())
        log.info("HTTP listening on http://%s:%d", self._host, self.port,
                 extra={"action": "listen"})

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            # The main loop only ticks (it sees should_exit at its next 0.1 s tick):
            # cancelled rather than waited for; shutdown() then closes as before.
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            server, state = self._server, self._server.server_state
            if state.connections or state.tasks:
                await server.shutdown()  # each connection finishes its request, then closes
                return
            # Nothing to drain. uvicorn's shutdown() would still sleep 0.1 s for
            # connections to finish (a stop of every node, of every hub a test starts).
            # No await before close(): no connection can come in between.
            for listener in server.servers:
                listener.close()
            for listener in server.servers:
                await listener.wait_closed()
            await server.lifespan.shutdown()


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock
