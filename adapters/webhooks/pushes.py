"""The outbox channel of delivery-report pushes in the dialects' shapes: a GET to a
Kannel dlr-url with its escapes filled, a GET with Clickatell's callback parameters, a
POST of the XML deliveryReport; through the same guarded client, policy and retries as
signed webhooks (2xx delivered, Retry-After honoured, redirects never followed)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
from yarl import URL

from adapters.vendors import clickatell, kannel
from adapters.webhooks.client import GuardedClient, retry_after
from adapters.xml.reports import delivery_report
from hub.errors import Rejected, RetryLater, TemporaryFailure
from hub.model import CallbackKind, OutboxItem, Status
from hub.webhooks import Network, check_url

CHANNEL = "push"  # spool.pushes queues its items under this name
USER_AGENT = "smshub-pushes/1"
_MAX_RESPONSE = 65_536  # read (and drop) at most this much of an answer


class Request:
    """One push as it goes on the wire."""

    def __init__(self, method: str, url: str, body: bytes | None = None,
                 content_type: str | None = None) -> None:
        self.method, self.url, self.body, self.content_type = method, url, body, content_type


def build(facts: Mapping[str, Any]) -> Request:
    """The request a push's facts (spool.pushes) make, by its kind."""
    kind = CallbackKind(facts["kind"])
    at = datetime.fromisoformat(facts["at"].replace("Z", "+00:00"))
    if kind is CallbackKind.KANNEL:
        return Request("GET", kannel_url(facts, at))
    if kind is CallbackKind.CLICKATELL:
        params = clickatell.callback_params(
            api_id=facts["api_id"], message_id=facts["id"], client_ref=facts["client_ref"],
            to=facts["to"], sender=facts["from"], at=at, status=Status(facts["status"]),
            charge=facts["cost"])
        url = facts["url"]
        return Request("GET", url + ("&" if "?" in url else "?") + urlencode(params))
    return Request("POST", facts["url"], delivery_report(facts), "application/xml")


def kannel_url(facts: Mapping[str, Any], at: datetime) -> str:
    error = facts.get("error")
    text = kannel.report_text(facts["dlr"], facts["status"], at, facts["carrier_ref"],
                              (error["code"], error["message"]) if error else None)
    return kannel.fill(facts["url"], kannel.Dlr(
        type=facts["dlr"], text=text, receiver=facts["to"], sender=facts["from"] or "",
        at=at, message_id=facts["id"], foreign_id=facts["carrier_ref"],
        smsc=facts["carrier"], service=facts["account"]))


class PushChannel:
    """Delivers push outbox items; an address the hub may not call (the URL itself, or
    what its host resolves to at this delivery) gives the item up."""

    name = CHANNEL

    def __init__(self, allowed: Sequence[Network], timeout: float, connections: int,
                 wall: Callable[[], float] = time.time) -> None:
        self._allowed = list(allowed)
        self._http = GuardedClient(allowed, timeout, connections, USER_AGENT)
        self._wall = wall

    async def close(self) -> None:
        await self._http.close()

    async def deliver(self, item: OutboxItem) -> None:
        request = build(json.loads(item.payload or "{}"))
        check_url(request.url, self._allowed)
        headers = {} if request.content_type is None else {"Content-Type": request.content_type}
        try:
            # encoded=True: the URL goes out byte for byte as filled (Kannel's escapes are
            # already URL-encoded; re-quoting would change them).
            async with self._http.session().request(
                    request.method, URL(request.url, encoded=True), data=request.body,
                    headers=headers, allow_redirects=False) as answer:
                await answer.content.read(_MAX_RESPONSE)
                status, wait = answer.status, answer.headers.get("Retry-After")
        except TimeoutError as exc:
            raise TemporaryFailure("the receiver did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise TemporaryFailure(f"could not reach the receiver: {exc}") from exc
        self._judge(status, wait)

    def _judge(self, status: int, wait_header: str | None) -> None:
        if 200 <= status < 300:
            return
        if status == 410:  # the receiver says this URL is gone for good
            raise Rejected("receiver_gone", "the receiver answered 410 Gone")
        if 300 <= status < 400:
            raise TemporaryFailure(f"HTTP {status}: redirects are not followed")
        wait = retry_after(wait_header, self._wall())
        if status in (429, 503) and wait is not None:
            raise RetryLater(f"HTTP {status}, Retry-After {wait} s", wait)
        raise TemporaryFailure(f"HTTP {status}")
