"""The webhook outbox channel: POSTs each event's JSON body to its endpoint, signed, over
a pool of keep-alive connections; 2xx is delivered, 410 Gone disables the endpoint, 429
and 503 are retried after the receiver's Retry-After, anything else (other statuses,
redirects, timeouts, refused connections) after the outbox's backoff."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import aiohttp

from adapters.webhooks import signing
from adapters.webhooks.client import GuardedClient
from adapters.webhooks.client import retry_after as parse_retry_after
from hub.clock import Clock, utcnow
from hub.errors import Rejected, RetryLater, TemporaryFailure
from hub.model import OutboxItem, WebhookEndpoint
from hub.ports import WebhookStore
from hub.spoolcall import SpoolThreads
from hub.webhooks import Network, check_url

log = logging.getLogger(__name__)

CHANNEL = "webhook"
USER_AGENT = "smshub-webhooks/1"
_MAX_RESPONSE = 65_536  # read (and drop) at most this much of an answer


class WebhookChannel:
    """Delivers webhook outbox items. Endpoints (URL, secrets, enabled) are read from
    the spool once per batch, all at once, not per delivery."""

    name = CHANNEL

    def __init__(self, runner: SpoolThreads[WebhookStore], allowed: Sequence[Network],
                 timeout: float, connections: int, clock: Clock = utcnow,
                 wall: Callable[[], float] = time.time) -> None:
        self._runner = runner
        self._allowed = list(allowed)
        self._http = GuardedClient(allowed, timeout, connections, USER_AGENT)
        self._clock = clock
        self._wall = wall
        self._endpoints: dict[str, WebhookEndpoint] = {}

    async def close(self) -> None:
        await self._http.close()

    async def refresh(self) -> None:
        """Read every endpoint again (the outbox calls this before each batch)."""
        endpoints = await self._runner.call(self._runner.spool.list_webhooks, None)
        self._endpoints = {e.id: e for e in endpoints}

    async def deliver(self, item: OutboxItem) -> None:
        endpoint = self._endpoints.get(item.endpoint_id or "")
        if endpoint is None:
            raise Rejected("endpoint_removed", "the endpoint was removed")
        if not endpoint.enabled:
            raise Rejected("endpoint_disabled", endpoint.disabled_reason or "disabled")
        url = check_url(endpoint.url, self._allowed)
        body = (item.payload or "{}").encode()
        now = self._clock()
        keys = [endpoint.secret]
        if (endpoint.previous_secret and endpoint.previous_until is not None
                and endpoint.previous_until > now):
            keys.append(endpoint.previous_secret)
        headers = signing.headers(keys, item.id, int(self._wall()), body)
        headers["Content-Type"] = "application/json"
        try:
            async with self._http.session().post(url, data=body, headers=headers,
                                           allow_redirects=False) as answer:
                await answer.content.read(_MAX_RESPONSE)
                status, retry_after = answer.status, answer.headers.get("Retry-After")
        except TimeoutError as exc:
            raise TemporaryFailure("the endpoint did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise TemporaryFailure(f"could not reach the endpoint: {exc}") from exc
        await self._judge(endpoint, status, retry_after)

    async def _judge(self, endpoint: WebhookEndpoint, status: int,
                     retry_after: str | None) -> None:
        if 200 <= status < 300:
            return
        if status == 410:
            reason = "the receiver answered 410 Gone"
            await self._runner.call(self._runner.spool.enable_webhook, endpoint.id, False,
                                    reason, self._clock())
            self._endpoints.pop(endpoint.id, None)
            log.warning("webhook endpoint %s disabled: %s", endpoint.id, reason,
                        extra={"action": "webhook"})
            raise Rejected("endpoint_gone", reason)
        if 300 <= status < 400:
            raise TemporaryFailure(f"HTTP {status}: redirects are not followed")
        wait = parse_retry_after(retry_after, self._wall())
        if status in (429, 503) and wait is not None:
            raise RetryLater(f"HTTP {status}, Retry-After {wait} s", wait)
        raise TemporaryFailure(f"HTTP {status}")
