"""The hot routes answered by the HTTP protocol itself: a request to one of them
(`POST /v1/messages`, the dialects' send commands) that arrives plainly framed is read,
handed to its endpoint and answered here, without uvicorn's ASGI cycle, its task
wrapper and message dicts, or the app's layers. Everything else, and every request
that is not plain (chunked, `Expect: 100-continue`, a body over its limit, a query on
a path that takes none, HEAD, a request queued behind another on its connection, the
server at its concurrency limit), goes the ASGI way as before, so the guards and the
answers are the same either way: the endpoints are the app's own.

A hot route whose endpoint has a Prompter (adapters/http/app.py) goes further: its
requests of one turn of the loop are staged together once the loop has read them, their
messages handed to intake's group commit in one piece, and each answered when it is
committed, with no task or coroutine at all. A request the Prompter declines (a login
not in the cache, a field refused, a dlr-url to check) gets its task as before."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httptools
from starlette.requests import Request
from starlette.responses import Response

from adapters.http.app import Endpoint, Prompt, Prompter, call_endpoint, internal_error
from adapters.http.guards import HeaderDeadline, encode_answer
from hub.model import NewMessage
from hub.ports import Committed

log = logging.getLogger(__name__)

# (method, path) -> the endpoint, the most bytes its body may have (as ExactPaths serves
# them) and its Prompter, if it has one.
HotTable = Mapping[tuple[bytes, bytes], tuple[Endpoint, int, Prompter | None]]
# Intake.commit_soon: staged messages into the next group commit.
Commit = Callable[[list[NewMessage]], "asyncio.Future[list[Committed]]"]


class _Quiet:
    """uvicorn's code sets a cycle's message_event on a disconnect: nothing waits here."""

    def set(self) -> None:
        pass


_QUIET = _Quiet()


@dataclass(eq=False)
class _HotRequest:
    """A hot request being read or answered. It stands as the connection's `cycle`
    while it lasts, with the attributes uvicorn's protocol and HeaderDeadline read of
    one, so that a request pipelined behind it waits its turn (uvicorn queues a
    request while the cycle before it is not complete) and a disconnect or a shutdown
    is seen by it."""

    endpoint: Endpoint
    prompt: Prompter | None
    scope: dict[str, Any]
    keep_alive: bool
    body: bytearray = field(default_factory=bytearray)
    more_body: bool = True
    response_started: bool = False
    response_complete: bool = False
    disconnected: bool = False
    message_event: _Quiet = _QUIET


class HotRoutes(HeaderDeadline):
    """HeaderDeadline (and so uvicorn's httptools protocol) answering `hot` itself."""

    hot: HotTable = {}
    query_paths: frozenset[bytes] = frozenset()  # hot paths whose clients send a query
    commit: Commit | None = None  # where prompted requests' messages go (hot_routes)
    # Prompted requests of this turn of the loop, the server's connections' together.
    prompted: list[tuple[HotRoutes, _HotRequest]]
    _reading: _HotRequest | None = None  # between its head and the end of its body

    def on_headers_complete(self) -> None:
        hot = self._hot_request()
        if hot is None:
            super().on_headers_complete()
            return
        self._head_complete()
        self.cycle = hot  # type: ignore[assignment]  # see _HotRequest
        self._reading = hot

    def on_body(self, body: bytes) -> None:
        if self._reading is None:
            super().on_body(body)
            return
        self._reading.body += body  # at most its Content-Length, within the route's limit

    def on_message_complete(self) -> None:
        hot = self._reading
        if hot is None:
            super().on_message_complete()
            return
        self._reading = None
        self._body_complete()
        hot.more_body = False
        if hot.prompt is not None and self.commit is not None:
            # Taken with the turn's other prompted requests once the loop has read
            # them all, as their tasks would start (then no task at all): a task and
            # the endpoint's coroutines cost the event loop a sixth of a sendsms.
            if not self.prompted:
                self.loop.call_soon(_take_prompted, self.prompted, self.commit)
            self.prompted.append((self, hot))
            return
        self._start_answer(hot)

    def _start_answer(self, hot: _HotRequest) -> None:
        task = self.loop.create_task(self._answer(hot))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)  # the server's graceful shutdown waits for it

    def _hot_request(self) -> _HotRequest | None:
        """The request whose head just ended, if it is one to answer here."""
        parser = self.parser
        cycle = self.cycle
        if (cycle is not None and not cycle.response_complete) or self.pipeline \
                or self.expect_100_continue or parser.should_upgrade():
            return None
        method = parser.get_method()
        url = httptools.parse_url(self.url)
        found = self.hot.get((method, url.path))
        if found is None:
            return None
        endpoint, max_bytes, prompt = found
        query = url.query or b""
        if query and url.path not in self.query_paths:
            return None  # NoCredentialsInUrl's to judge
        length = 0
        for name, value in self.headers:
            if name == b"content-length":
                if not value.isdigit():
                    return None
                length = int(value)
            elif name == b"transfer-encoding":
                return None
        if length > max_bytes:
            return None  # answered 413 in the path's own format by the app
        limit = self.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            return None  # uvicorn's 503
        version = parser.get_http_version()
        scope = self.scope
        scope["method"] = method.decode("ascii")
        if version != "1.1":
            scope["http_version"] = version
        scope["path"] = url.path.decode("ascii")
        scope["raw_path"] = url.path
        scope["query_string"] = query
        keep_alive = version != "1.0" and parser.should_keep_alive()
        return _HotRequest(endpoint, prompt, scope, keep_alive)  # type: ignore[arg-type]

    async def _answer(self, hot: _HotRequest) -> None:
        self._respond(hot, await call_endpoint(hot.endpoint, Request(hot.scope),
                                               bytes(hot.body)))

    def _respond(self, hot: _HotRequest, response: Response) -> None:
        if hot.disconnected or self.transport.is_closing():
            return  # gone, or cut off (a body deadline): nothing to answer
        hot.response_started = True
        headers = response.raw_headers
        if hot.keep_alive and (b"connection", b"close") in headers:
            hot.keep_alive = False  # the endpoint ends the connection (as uvicorn reads it)
        self._write_whole(encode_answer(response.status_code, headers, bytes(response.body),
                                  self.server_state.default_headers, hot.keep_alive))
        hot.response_complete = True
        if not hot.keep_alive:
            self.transport.close()
        self.on_response_complete()  # uvicorn's: the next pipelined request, or keep-alive


def _take_prompted(pending: list[tuple[HotRoutes, _HotRequest]], commit: Commit) -> None:
    """Each prompted request of the turn staged by its Prompter (or, declined, given a
    task as usual), the staged messages committed together, each answered after."""
    turn = pending[:]
    pending.clear()
    staged: list[tuple[HotRoutes, _HotRequest, Prompt]] = []
    for protocol, hot in turn:
        assert hot.prompt is not None
        body = bytes(hot.body)
        try:
            prompt = hot.prompt(Request(hot.scope), body)
        except Exception:
            log.exception("unhandled error in %s", hot.scope["path"], extra={"action": "http"})
            prompt = None  # the endpoint's own way answers it, in its own words
        if prompt is None:
            protocol._start_answer(hot)
        elif not prompt.ready:  # nothing to commit: every message refused
            protocol._respond(hot, _answer_of(hot, prompt, []))
        else:
            staged.append((protocol, hot, prompt))
    if not staged:
        return
    try:
        future = commit([message for _, _, prompt in staged for message in prompt.ready])
    except Exception as exc:  # no spool thread to commit on (the hub stopping)
        for protocol, hot, prompt in staged:
            protocol._respond(hot, _answer_of(hot, prompt, exc))
        return
    future.add_done_callback(functools.partial(_answer_prompted, staged))


def _answer_prompted(staged: list[tuple[HotRoutes, _HotRequest, Prompt]],
                     future: asyncio.Future[list[Committed]]) -> None:
    if future.cancelled():
        return  # the loop is going away: nothing to answer on
    failed = future.exception()
    if failed is not None:
        error = failed if isinstance(failed, Exception) else RuntimeError(str(failed))
        for protocol, hot, prompt in staged:
            protocol._respond(hot, _answer_of(hot, prompt, error))
        return
    done, start = future.result(), 0
    for protocol, hot, prompt in staged:
        end = start + len(prompt.ready)
        protocol._respond(hot, _answer_of(hot, prompt, done[start:end]))
        start = end


def _answer_of(hot: _HotRequest, prompt: Prompt,
               done: Sequence[Committed] | Exception) -> Response:
    try:
        return prompt.answer(done)
    except Exception:  # as call_endpoint answers an endpoint's failure
        return internal_error(hot.scope["path"])


def hot_routes(header_timeout: float, body_timeout: float, table: HotTable,
               query_paths: Collection[str], commit: Commit | None = None) -> type[HotRoutes]:
    """The protocol class for one server: `table` answered by it, `query_paths` those of
    its paths whose clients send their parameters (credentials too) in the query, and
    `commit` taking the messages its routes' Prompters stage."""
    return type("HubHttpProtocol", (HotRoutes,), {
        "header_timeout": header_timeout, "body_timeout": body_timeout, "hot": dict(table),
        "query_paths": frozenset(path.encode() for path in query_paths),
        "commit": staticmethod(commit) if commit is not None else None, "prompted": []})

