"""A provider's callbacks to the hub: delivery reports at /carriers/NAME/dlr and replies
at /carriers/NAME/mo (GET query, form or JSON POST), authenticated by a secret in the
path, a header or HTTP Basic, mapped to the model and handed to the CarrierSink; the
provider gets 200 only once the sink has committed them."""

from __future__ import annotations

import base64
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.carriers.http import placeholders
from adapters.carriers.http.settings import Callbacks, ReplyFields, ReportFields
from hub.clock import Clock
from hub.errors import Rejected
from hub.model import DeliveryReport, ErrorInfo, InboundMessage, Status
from hub.numbers import normalise, with_plus
from hub.ports import CarrierSink

log = logging.getLogger(__name__)

Record = dict[str, str]
_METHODS = ["GET", "POST"]


class CallbackError(ValueError):
    """A callback the hub cannot read (a missing field); answered 400."""


class CallbackRoutes:
    """The callback endpoints of one HTTP upstream carrier."""

    def __init__(self, carrier: str, settings: Callbacks,
                 sink: Callable[[], CarrierSink | None], clock: Clock) -> None:
        self._carrier = carrier
        self._settings = settings
        self._sink = sink
        self._clock = clock

    def routes(self) -> list[BaseRoute]:
        """The routes to mount on the hub's listener; none without a callback_secret."""
        if not self._settings.enabled:
            return []
        found: list[BaseRoute] = []
        endpoints = (("dlr", self._reports, self._settings.reports),
                     ("mo", self._replies, self._settings.replies))
        for kind, endpoint, fields in endpoints:
            if fields is None:
                continue
            base = f"/carriers/{self._carrier}/{kind}"
            found.append(Route(base, endpoint, methods=_METHODS))
            if self._settings.auth == "path":
                found.append(Route(base + "/{secret}", endpoint, methods=_METHODS))
        return found

    async def _reports(self, request: Request) -> Response:
        fields = self._settings.reports
        assert fields is not None  # mounted only when configured
        refused = self._refusal(request)
        if refused is not None:
            return refused
        now = self._clock()
        try:
            reports = [report_from(r, self._carrier, fields, now)
                       for r in await records(request)]
        except CallbackError as exc:
            return self._unreadable("delivery report", exc)
        return await self._hand_over(lambda sink: sink.report(reports), len(reports), "dlr")

    async def _replies(self, request: Request) -> Response:
        fields = self._settings.replies
        assert fields is not None
        refused = self._refusal(request)
        if refused is not None:
            return refused
        now = self._clock()
        try:
            replies = [reply_from(r, self._carrier, fields, self._settings, now)
                       for r in await records(request)]
        except CallbackError as exc:
            return self._unreadable("reply", exc)
        return await self._hand_over(lambda sink: sink.inbound(replies), len(replies), "mo")

    async def _hand_over(self, give: Callable[[CarrierSink], Awaitable[None]], count: int,
                         kind: str) -> Response:
        sink = self._sink()
        if sink is None:
            return PlainTextResponse("not started", 503, headers={"Retry-After": "5"})
        try:
            await give(sink)
        except Exception:  # not committed: the provider must send it again
            log.exception("carrier %s: %s callback not committed", self._carrier, kind,
                          extra={"action": "callback"})
            return PlainTextResponse("try again later", 503, headers={"Retry-After": "5"})
        log.debug("carrier %s: %d %s callback records committed", self._carrier, count, kind,
                  extra={"action": "callback"})
        return PlainTextResponse("OK")  # BulkSMS wants at least one character

    def _unreadable(self, what: str, exc: CallbackError) -> Response:
        log.warning("carrier %s: unreadable %s callback: %s", self._carrier, what, exc,
                    extra={"action": "callback"})
        return PlainTextResponse(str(exc), 400)

    def _refusal(self, request: Request) -> Response | None:
        """401 without credentials, 403 with wrong ones, None when they match."""
        settings = self._settings
        if settings.auth == "path":
            given = request.path_params.get("secret")
            expected = settings.secret
        elif settings.auth == "header":
            given = request.headers.get(settings.header)
            expected = settings.secret
        else:
            given = _basic_pair(request.headers.get("authorization", ""))
            expected = f"{settings.username}:{settings.secret}"
        if not given:
            log.warning("carrier %s: callback without credentials refused", self._carrier,
                        extra={"action": "callback-refused"})
            challenge = {"WWW-Authenticate": 'Basic realm="smshub"'} if (
                settings.auth == "basic") else {}
            return PlainTextResponse("credentials required", 401, headers=challenge)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            log.warning("carrier %s: callback with wrong credentials refused", self._carrier,
                        extra={"action": "callback-refused"})
            return PlainTextResponse("forbidden", 403)
        return None


def _basic_pair(header: str) -> str | None:
    """`user:password` from an HTTP Basic Authorization header, None if there is none."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return "\x00"  # present but unreadable: wrong credentials (403), not missing


async def records(request: Request) -> list[Record]:
    """The callback's fields: the query, plus a form or JSON body (a JSON list is several
    records); every value as text."""
    query = dict(request.query_params)
    if request.method == "GET":
        return [query]
    body = await request.body()
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind == "application/json" or body.lstrip()[:1] in (b"{", b"["):
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise CallbackError(f"the body is not valid JSON: {exc}") from None
        items = document if isinstance(document, list) else [document]
        if not all(isinstance(i, Mapping) for i in items):
            raise CallbackError("the JSON body must be an object or a list of objects")
        return [query | _texts(item) for item in items]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("iso-8859-1")
    return [query | dict(parse_qsl(text, keep_blank_values=True))]


def _texts(item: Mapping[str, Any]) -> Record:
    found = {str(k): placeholders.scalar(v) for k, v in item.items()}
    return {k: v for k, v in found.items() if v is not None}


def _first(record: Record, names: Sequence[str]) -> str | None:
    for name in names:
        if record.get(name):
            return record[name]
    return None


def _carrier_id(record: Record, templates: Sequence[str]) -> str | None:
    """The first id template whose fields the callback all carries."""
    for template in templates:
        needed = placeholders.names(template)
        if all(record.get(n) for n in needed):
            return placeholders.render(template, record)
    return None


def report_from(record: Record, carrier: str, fields: ReportFields,
                now: datetime) -> DeliveryReport:
    carrier_id = _carrier_id(record, fields.id)
    if carrier_id is None:
        raise CallbackError(f"no message id: expected {' or '.join(fields.id)}")
    word = _first(record, fields.status)
    if word is None:
        raise CallbackError(f"no status: expected {' or '.join(fields.status)}")
    status = fields.statuses.get(word)
    if status is None:
        log.warning("carrier %s: unknown status word %r taken as intermediate", carrier, word,
                    extra={"action": "callback"})
        status = Status.SUBMITTED
    error = None
    code = _first(record, fields.error)
    if status.final and status is not Status.DELIVERED:
        error = ErrorInfo(f"upstream_{code}" if code else "upstream_status",
                          f"{word} (error {code})" if code else word)
    return DeliveryReport(carrier, carrier_id, status, now, error=error, detail=word)


def reply_from(record: Record, carrier: str, fields: ReplyFields, settings: Callbacks,
               now: datetime) -> InboundMessage:
    sender = _first(record, fields.sender)
    if sender is None:
        raise CallbackError(f"no sender: expected {' or '.join(fields.sender)}")
    text = next((record[n] for n in fields.text if n in record), None)
    if text is None:
        raise CallbackError(f"no text: expected {' or '.join(fields.text)}")
    recipient = _first(record, fields.recipient) or settings.inbound_number
    return InboundMessage(carrier, e164(sender, settings.region), recipient, text, now,
                          carrier_message_id=_first(record, fields.id))


def e164(raw: str, region: str) -> str:
    """A handset number as E.164: providers write `27821234567` (no '+') or local forms;
    anything that is no valid number (a short code) is kept as written."""
    text = raw.strip()
    try:
        return normalise(with_plus(text), region)
    except Rejected:
        return text
