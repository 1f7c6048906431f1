"""The HTTP upstream carrier: submits through another provider's HTTP API over a
keep-alive connection pool (bounded timeout, redirects never followed), maps the
provider's answers to submitted / retry / rejected per message, holds back while the
provider's Retry-After lasts, and serves the provider's callbacks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx
from starlette.routing import BaseRoute

from adapters.carriers.http import exchange
from adapters.carriers.http.auth import Authenticator, TokenError
from adapters.carriers.http.callbacks import CallbackRoutes
from adapters.carriers.http.settings import UpstreamSettings
from hub import cpa
from hub.clock import Clock, utcnow
from hub.dispatcher import UNAVAILABLE, held_behind
from hub.model import ErrorInfo, Message, SubmitResult, Verdict
from hub.ports import CarrierSink

log = logging.getLogger(__name__)

_MAX_RETRY_AFTER = 3600.0


class HttpUpstreamCarrier:
    """A Carrier that is another provider's HTTP API. One request carries one message,
    or a batch where the provider's body takes a list; requests run concurrently up to
    max_connections, but one recipient's one after the other, in order. 4xx answers are
    permanent (except retry_statuses, 408 and 429 by default), 5xx, timeouts and
    connection errors temporary."""

    def __init__(self, settings: UpstreamSettings, clock: Clock = utcnow) -> None:
        self.name = settings.name
        self.settings = settings
        self._client: httpx.AsyncClient | None = None
        self._sink: CarrierSink | None = None
        self._auth = Authenticator(settings.auth)
        self._throttle = Throttle(settings.max_throttle_wait)
        self._slots = asyncio.Semaphore(settings.max_connections)
        self._last: dict[str, asyncio.Event] = {}  # recipient -> its latest request's end
        self._clock = clock
        self._callbacks = CallbackRoutes(settings.name, settings.callbacks,
                                         lambda: self._sink, clock)
        # Where requests go, without query or credentials: safe to log.
        url = urlsplit(settings.request.url)
        self._where = f"{url.scheme}://{url.hostname}{url.path}"

    @property
    def available(self) -> bool:
        """Down while stopped or while the provider's Retry-After outlasts max_throttle_wait
        (routing passes its traffic to the next carrier on the list meanwhile)."""
        return self._client is not None and not self._throttle.holding

    def callback_routes(self) -> list[BaseRoute]:
        """The provider's delivery-report and reply callbacks, for the hub's listener."""
        return self._callbacks.routes()

    def take_callbacks(self, sink: CarrierSink | None) -> None:
        """Commit the provider's callbacks through `sink` without starting to send: an
        ingress node serves the callbacks, a dispatch node sends (None: stop taking)."""
        self._sink = sink

    async def start(self, sink: CarrierSink) -> None:
        s = self.settings
        limits = httpx.Limits(max_connections=s.max_connections,
                              max_keepalive_connections=s.max_connections)
        hide_queries_in_httpx_logs()
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(s.timeout), limits=limits, follow_redirects=False,
            trust_env=False, proxy=s.proxy or None,
        )
        self._sink = sink

    async def stop(self) -> None:
        self._sink = None
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def submit(self, messages: Sequence[Message]) -> list[SubmitResult]:
        groups = exchange.plan(messages, self.settings.request)
        # Chained now, in order, so one recipient's requests go out as they were claimed.
        chained = [(group, *self._chain(group)) for group in groups]
        # Recipient -> the result of its first message in this batch to go back to the
        # queue: its later ones are not sent past it (hub.dispatcher.held_behind).
        retried: dict[str, SubmitResult] = {}
        answers = await asyncio.gather(*(self._send_in_turn(*c, retried) for c in chained))
        by_id = {r.message_id: r for results in answers for r in results}
        return [by_id[m.id] for m in messages]

    def _chain(self, group: list[Message]) -> tuple[list[asyncio.Event], asyncio.Event]:
        """What the group waits for (earlier requests to its numbers) and what it sets."""
        done = asyncio.Event()
        earlier: list[asyncio.Event] = []
        for message in group:
            before = self._last.get(message.recipient)
            if before is not None and before not in earlier:
                earlier.append(before)
            self._last[message.recipient] = done
        return earlier, done

    async def _send_in_turn(self, group: list[Message], earlier: list[asyncio.Event],
                            done: asyncio.Event,
                            retried: dict[str, SubmitResult]) -> list[SubmitResult]:
        try:
            for event in earlier:
                await event.wait()
            # Most batches have nothing sent back: no list to split, no result to scan.
            held = [held_behind(m, retried[m.recipient]) for m in group
                    if m.recipient in retried] if retried else []
            rest = [m for m in group if m.recipient not in retried] if held else group
            results = held + (await self._send(rest) if rest else [])
            if any(r.verdict is Verdict.RETRY for r in results):
                recipients = {m.id: m.recipient for m in group}
                for result in results:  # noted before `done` lets the recipient's next go
                    if result.verdict is Verdict.RETRY:
                        retried.setdefault(recipients[result.message_id], result)
            return results
        finally:
            done.set()
            for message in group:
                if self._last.get(message.recipient) is done:
                    del self._last[message.recipient]

    async def _send(self, group: list[Message]) -> list[SubmitResult]:
        async with self._slots:
            client = self._client
            if client is None:
                return _all(group, Verdict.RETRY, ErrorInfo(UNAVAILABLE,
                                                            f"{self.name} is not started"))
            remaining = await self._throttle.wait()
            if remaining:  # nothing was sent: another carrier may take them now
                return _all(group, Verdict.RETRY, ErrorInfo(
                    UNAVAILABLE, f"throttled: the provider asked us to wait "
                                 f"{remaining:.0f} s more (Retry-After)"))
            # The last word before the request goes: the waits above (a connection slot,
            # the provider's Retry-After, an earlier request to the same number) may
            # outlast direct-marketing hours.
            now = self._clock()
            late = [r for m in group if (r := cpa.too_late(m, now)) is not None]
            if late:
                kept = {r.message_id for r in late}
                rest = [m for m in group if m.id not in kept]
                return late + (await self._request(client, rest) if rest else [])
            return await self._request(client, group)

    async def _request(self, client: httpx.AsyncClient,
                       group: list[Message]) -> list[SubmitResult]:
        """One request for the group, and what its answer says of each message."""
        try:
            response = await self._exchange(client, group)
        except TokenError as exc:
            return _all(group, Verdict.RETRY, ErrorInfo(UNAVAILABLE, str(exc)))
        except httpx.TimeoutException as exc:
            log.warning("carrier %s: no answer from %s within %g s", self.name,
                        self._where, self.settings.timeout, extra={"action": "submit"})
            unsent = isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            return _all(group, Verdict.RETRY, ErrorInfo(
                UNAVAILABLE if unsent else "timeout",
                f"no answer within {self.settings.timeout:g} s"))
        except httpx.TransportError as exc:
            log.warning("carrier %s: %s failed: %s", self.name, self._where,
                        type(exc).__name__, extra={"action": "submit"})
            # A connection never made sent nothing; any other error may have.
            code = UNAVAILABLE if isinstance(exc, httpx.ConnectError) else "connection_error"
            return _all(group, Verdict.RETRY, ErrorInfo(
                code, f"{type(exc).__name__}: {str(exc)[:120]}"))
        return self._judge(group, response)

    async def _exchange(self, client: httpx.AsyncClient, group: list[Message]) -> httpx.Response:
        """Send the request; a refused token is renewed and the request sent once more."""
        for attempt in (1, 2):
            parts = await self._auth.parts(client)
            out = exchange.build(group, self.settings.request, parts)
            response = await client.request(out.method, out.url, headers=out.headers,
                                            content=out.content)
            if response.status_code == 401 and self._auth.renewable and attempt == 1:
                self._auth.forget()
                continue
            break
        return response

    def _judge(self, group: list[Message], response: httpx.Response) -> list[SubmitResult]:
        status, answer = response.status_code, self.settings.answer
        log.debug("carrier %s: %d messages to %s: HTTP %d", self.name, len(group),
                  self._where, status, extra={"action": "submit"})
        if 200 <= status < 300:
            return exchange.read_success(group, response.text, answer, self.settings.request)
        wait = retry_after(response.headers.get("retry-after"))
        if wait is not None and status in (429, 503):
            self._throttle.hold(wait)
        reason = exchange.error_text(response.text, answer)
        error = ErrorInfo(f"http_{status}", reason)
        if 300 <= status < 400:
            error = ErrorInfo(f"http_{status}", "the provider redirected; redirects are not "
                                                "followed (check the url)")
        temporary = status < 400 or status >= 500 or status in answer.retry_statuses
        if temporary:
            log.warning("carrier %s: HTTP %d from %s, will retry", self.name, status,
                        self._where, extra={"action": "submit"})
        return _all(group, Verdict.RETRY if temporary else Verdict.REJECTED, error)


def _all(group: Sequence[Message], verdict: Verdict, error: ErrorInfo) -> list[SubmitResult]:
    return [SubmitResult(m.id, verdict, error=error) for m in group]


class Throttle:
    """Holds requests back while the provider's Retry-After lasts: a short rest is
    waited out, a longer one answers "retry" at once without asking the provider."""

    def __init__(self, max_wait: float) -> None:
        self._max_wait = max_wait
        self._until = 0.0  # time.monotonic()

    @property
    def holding(self) -> bool:
        return self._until - time.monotonic() > self._max_wait

    def hold(self, seconds: float) -> None:
        self._until = max(self._until, time.monotonic() + min(seconds, _MAX_RETRY_AFTER))

    async def wait(self) -> float:
        """0 once requests may go; otherwise the seconds still to wait."""
        remaining = self._until - time.monotonic()
        if remaining <= 0:
            return 0.0
        if remaining > self._max_wait:
            return remaining
        await asyncio.sleep(remaining)
        return 0.0


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _HideQuery(logging.Filter):
    """httpx logs each request's full URL; a key sent in the query must not reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
                isinstance(a, httpx.URL) and a.query for a in record.args):
            record.args = tuple(a.copy_with(query=None) if isinstance(a, httpx.URL) else a
                                for a in record.args)
        return True


_HIDE_QUERY = _HideQuery()


def hide_queries_in_httpx_logs() -> None:
    logger = logging.getLogger("httpx")
    if _HIDE_QUERY not in logger.filters:
        logger.addFilter(_HIDE_QUERY)
