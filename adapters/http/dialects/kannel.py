"""Kannel's sendsms (`/cgi-bin/sendsms`) as its HTTP clients send it: GET with the
parameters in the query, or POST with them form-encoded, read as Kannel's smsbox reads
them and answered in its words and HTTP statuses; the XML POST is adapters/xml/kannel's.
A dlr-url asks for the same pushes as the XML form's (docs/pushes.md)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from adapters.http.app import BodyTooLarge, HttpContext, Prompt, PromptRoute
from adapters.http.dialects.common import staged_prompt, submit
from adapters.http.dialects.params import (
    BadParameters,
    Params,
    has_form,
    parsed,
    read,
)
from adapters.http.dialects.paths import KANNEL
from adapters.http.logins import Logins, client_address
from adapters.xml.kannel import (
    KannelSendSms,
    answer,
    check_dlr_url,
    outcome_answer,
    refusal,
)
from hub.clock import utcnow
from hub.model import Account, Callback, CallbackKind, Submission
from hub.pushes import KANNEL_ALL, MAX_DLR_MASK

NO_RECEIVER = "Missing receiver number, rejected"
EMPTY_RECEIVER = "Empty receiver number not allowed, rejected"
# smsbox's ranges for its numeric fields (-1 is "not given"), checked in its order.
_RANGES = (("dlr-mask", "DLR-Mask", -1, MAX_DLR_MASK), ("mclass", "MClass", -1, 3),
           ("pid", "PID", -1, 255), ("rpi", "RPI", -1, 2), ("alt-dcs", "Alt-DCS", -1, 1),
           ("mwi", "MWI", -1, 7), ("coding", "Coding", -1, 2), ("compress", "Compress", -1, 1),
           ("validity", "Validity", -1, 10**6), ("deferred", "Deferred", -1, 10**6),
           ("priority", "Priority", 0, 3))
_ALIASES = {"dlr-mask": "dlrmask"}  # deprecated spellings smsbox still reads
_RANGE_NAMES = frozenset([name for name, *_ in _RANGES] + list(_ALIASES.values()))
_LEADING_INT = re.compile(rb"\s*([+-]?\d+)")


class FieldError(Exception):
    """A field Kannel refuses, in Kannel's words (400 unless `status` says)."""

    def __init__(self, words: str, status: int = 400) -> None:
        super().__init__(words)
        self.status = status


def integer(value: bytes | None) -> int | None:
    """A field as smsbox's sscanf("%d") reads it: the leading integer, or not given."""
    if not value:  # most fields are not given: no pattern to run
        return None
    found = _LEADING_INT.match(value)
    return int(found.group(1)) if found else None


def fields(params: Params) -> dict[str, int]:
    """The numeric fields given, each in smsbox's range (FieldError naming it if not);
    the deprecated `dlrmask` spelling too."""
    out: dict[str, int] = {}
    if not params.has_any(_RANGE_NAMES):  # most requests give none of them
        return out
    for name, label, low, high in _RANGES:
        value = integer(params.raw(name, _ALIASES.get(name, name)))
        if value is None:
            continue
        if not low <= value <= high:
            raise FieldError(f"{label} field misformed, rejected")
        out[name] = value
    return out


def message_text(params: Params, coding: int | None) -> str:
    """`text` in `charset`; without one UTF-8, or UTF-16BE for coding 2 (UCS-2), as
    Kannel's defaults are."""
    raw = params.raw("text") or b""
    charset = (params.raw("charset") or b"").decode("latin-1").strip()
    charset = charset or ("UTF-16BE" if coding == 2 else "UTF-8")
    try:
        return raw.decode(charset)
    except (LookupError, UnicodeDecodeError):
        raise FieldError("Charset or body misformed, rejected") from None


def callback(params: Params, mask: int | None) -> Callback | None:
    """dlr-url and dlr-mask, both needed, as in the XML form (no sendsms-user default)."""
    url = (params.raw("dlr-url", "dlrurl") or b"").decode("latin-1").strip()
    if url and (len(url) < 8 or not url.lower().startswith(("http://", "https://"))):
        raise FieldError("DLR-URL field misformed, rejected")
    if not url or mask is None or mask <= 0 or not mask & KANNEL_ALL:
        return None
    return Callback(CallbackKind.KANNEL, url, mask)


def submissions(params: Params, numbers: list[str]) -> list[Submission]:
    """One submission to each of `numbers` (at least one), refused as smsbox refuses
    the request (FieldError)."""
    if params.raw("udh"):
        raise FieldError("UDH is not supported, rejected")
    found = fields(params)
    coding = found.get("coding")
    if coding == 1:  # smshub sends text only: GSM-7 or UCS-2, chosen by the text itself
        raise FieldError("8-bit (binary) coding is not supported, rejected")
    text = message_text(params, coding)
    now = utcnow()
    deferred, validity = found.get("deferred", -1), found.get("validity", -1)
    sender = (params.raw("from") or b"").decode("utf-8", "replace").strip()
    first = Submission(
        numbers[0], text, sender or None,
        send_at=now + timedelta(minutes=deferred) if deferred > 0 else None,
        expires_at=now + timedelta(minutes=validity) if validity >= 0 else None,
        priority=found.get("priority", 0), callback=callback(params, found.get("dlr-mask")))
    return [first, *(replace(first, to=n) for n in numbers[1:])]


def receivers(params: Params, limit: int) -> list[str]:
    """`to`'s numbers (space-separated), refused as smsbox refuses them (FieldError)."""
    raw = params.raw("to")
    if raw is None:
        raise FieldError(NO_RECEIVER)
    numbers = raw.decode("latin-1").split()
    if not numbers:
        raise FieldError(EMPTY_RECEIVER)
    if len(numbers) > limit:
        raise FieldError(f"Too many receivers ({len(numbers)}; the limit is {limit}), "
                         "rejected", 413)
    return numbers


def routes(ctx: HttpContext, max_messages: int, logins: Logins) -> list[BaseRoute]:
    api = KannelHttp(ctx, KannelSendSms(ctx, max_messages, logins), logins)
    return [PromptRoute(KANNEL[0], api.get, prompt=api.prompt, methods=["GET"]),
            PromptRoute(KANNEL[0], api.post, prompt=api.prompt, methods=["POST"])]


class KannelHttp:
    def __init__(self, ctx: HttpContext, xml: KannelSendSms, logins: Logins) -> None:
        self.ctx = ctx
        self.xml = xml
        self.logins = logins

    async def get(self, request: Request) -> Response:
        return await self._handle(request)

    async def post(self, request: Request) -> Response:
        """A form body, or none, is the GET's parameters; any other is the XML form's."""
        if has_form(request):
            return await self._handle(request)
        return await self.xml.post(request)

    def prompt(self, request: Request, body: bytes) -> Prompt | None:
        """`_handle`'s common case staged at once (adapters/http/hot.py): a GET or form
        POST whose login is in the cache, with no field refused and no dlr-url (its
        target is looked up first). Anything else is declined, for `_handle` to answer."""
        if request.method == "POST" and not has_form(request):
            return None  # the XML form
        try:
            params = parsed(request, body)
            account = self.logins.cached(client_address(request), *_credentials(params))
            if account is None:
                return None
            numbers = receivers(params, self.xml.max_messages)
            subs = submissions(params, numbers)
        except (FieldError, BadParameters):
            return None
        if subs[0].callback is not None:
            return None
        return staged_prompt(self.ctx, account, subs,
                             lambda outcomes: outcome_answer(numbers, outcomes),
                             lambda exc: refusal(self.ctx, self.logins, exc))

    async def _handle(self, request: Request) -> Response:
        try:
            params = await read(request)
            account = await self._login(request, params)
            numbers = receivers(params, self.xml.max_messages)
            subs = submissions(params, numbers)
            await self._check_dlr_url(subs[0])
            outcomes = await submit(self.ctx, account, subs)
            return outcome_answer(numbers, outcomes)
        except FieldError as exc:
            return answer(exc.status, str(exc))
        except BadParameters as exc:
            return answer(400, f"Invalid request ({exc}), rejected")
        except BodyTooLarge:
            raise  # the app answers it with this path's own 413
        except Exception as exc:
            return refusal(self.ctx, self.logins, exc)

    async def _login(self, request: Request, params: Params) -> Account:
        return await self.logins.check(client_address(request), *_credentials(params))

    async def _check_dlr_url(self, sub: Submission) -> None:
        try:
            await check_dlr_url(self.ctx, sub.callback)
        except ValueError as exc:
            raise FieldError(str(exc)) from None


def _credentials(params: Params) -> tuple[str | None, str | None]:
    return params.text("username", "user"), params.text("password", "pass")
