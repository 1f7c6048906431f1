"""Kannel's sendsms XML POST (`POST /cgi-bin/sendsms`, `Content-Type: text/xml`, a
`<message><submit>` document), read as Kannel's smsbox reads it and answered in Kannel's
words and HTTP statuses; see docs/xml.md for the choices where the two differ."""

from __future__ import annotations

import logging
import string
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from urllib.parse import unquote_to_bytes

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response

from adapters.http.app import BodyRule, BodyTooLarge, HttpContext, temporarily
from adapters.http.logins import LockedOut, Logins, client_address
from adapters.webhooks.client import check_target
from adapters.xml.common import off_loop, submit_items
from adapters.xml.safety import XmlProblem, parse_untrusted
from hub.clock import utcnow
from hub.errors import AuthenticationError, TemporaryFailure
from hub.model import (
    Accepted,
    Account,
    Callback,
    CallbackKind,
    Outcome,
    Refused,
    Status,
    Submission,
)
from hub.pushes import KANNEL_ALL, MAX_DLR_MASK
from hub.webhooks import ForbiddenTarget

log = logging.getLogger(__name__)

PATH = "/cgi-bin/sendsms"
# Kannel answers sendsms in text/html, uncached.
_HEADERS = {"Pragma": "no-cache", "Cache-Control": "no-cache"}
# Kannel's other POST forms (the text in the body, fields in X-Kannel-* headers).
_HEADER_FORMS = ("text/plain", "text/html", "text/vnd.wap.wml", "application/octet-stream")

ACCEPTED = "0: Accepted for delivery"
QUEUED_LATER = "3: Queued for later delivery"
AUTH_FAILED = "Authorization failed for sendsms"
NO_RECEIVER = "Missing receiver(s) number(s), rejected"
DENIED = "Number(s) has/have been denied by white- and/or black-lists."
NOT_ROUTABLE = "Not routable. Do not try again."
TEMPORARY = "Temporal failure, try again later."
# Refusals Kannel would answer with its bearerbox NACK (403); other refusals are field errors.
_NOT_ROUTABLE = {"insufficient_credit", "account_disabled"}
# Refusals of the number itself: Kannel's white- and black-list answer (opt-out lists).
_DENIED = {"invalid_number", "opted_out", "blocked"}


@dataclass
class KannelRequest:
    user: str | None = None
    password: str | None = None
    numbers: list[str] = field(default_factory=list)
    submission: Submission | None = None
    problem: XmlProblem | None = None  # a field error, answered after authentication


def answer(status: int, text: str, **headers: str) -> Response:
    return Response(text, status, headers={**_HEADERS, **headers}, media_type="text/html")


# --- reading -----------------------------------------------------------------------


def _at(submit: etree._Element, path: str) -> str | None:
    """The stripped text at `path` under <submit>, like Kannel's XPath lookups."""
    found = submit.find(path)
    return None if found is None else (found.text or "").strip()


def _number(submit: etree._Element, path: str, name: str, low: int, high: int) -> int | None:
    value = _at(submit, path)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise XmlProblem(400, "field", f"{name} field misformed, rejected")
    return number


def user_data(value: str, encoding: str) -> str:
    """<ud> as Kannel decodes it: hex when it is valid hex, else URL-encoded; the bytes
    are in the document's declared encoding."""
    try:
        raw = (bytes.fromhex(value) if value and all(c in string.hexdigits for c in value)
               else unquote_to_bytes(value.replace("+", " ")))
        return raw.decode(encoding)
    except (ValueError, LookupError):
        raise XmlProblem(400, "field", "Charset or body misformed, rejected") from None


def read_submit(body: bytes, limit: int) -> KannelRequest:
    """Parse one sendsms document; runs in a worker thread."""
    root = parse_untrusted(body)
    submit = root.find("submit") if root.tag == "message" else None
    if submit is None:
        raise XmlProblem(400, "field", "Invalid XML document: no <message><submit>, rejected")
    request = KannelRequest(
        _at(submit, "from/username") or _at(submit, "from/user"),
        _at(submit, "from/password") or _at(submit, "from/pass"),
        [(n.text or "").strip() for n in submit.iterfind("da/number") if n.text])
    if len(request.numbers) > limit:
        raise XmlProblem(413, "field", f"Too many receivers ({len(request.numbers)}; the "
                         f"limit is {limit}), rejected")
    encoding = root.getroottree().docinfo.encoding or "UTF-8"
    try:
        request.submission = _submission(submit, encoding)
    except XmlProblem as problem:
        request.problem = problem
    return request


def _submission(submit: etree._Element, encoding: str) -> Submission:
    if submit.find("udh") is not None:
        raise XmlProblem(400, "field", "UDH is not supported, rejected")
    coding = _number(submit, "dcs/coding", "Coding", 0, 2)
    if coding == 1:  # smshub sends text only: GSM-7 or UCS-2, chosen by the text itself
        raise XmlProblem(400, "field", "8-bit (binary) coding is not supported, rejected")
    _number(submit, "dcs/mclass", "MClass", 0, 3)
    deferred = _number(submit, "timing/delay", "Deferred", 0, 10**6)  # minutes from now
    validity = _number(submit, "vp/delay", "Validity", 0, 10**6)  # minutes from now
    priority = _number(submit, "priority", "Priority", 0, 3)
    now = utcnow()
    return Submission(
        "", user_data(_at(submit, "ud") or "", encoding), _at(submit, "oa/number") or None,
        send_at=None if not deferred else now + timedelta(minutes=deferred),
        expires_at=None if validity is None else now + timedelta(minutes=validity),
        priority=priority or 0, callback=_callback(submit))


def _callback(submit: etree._Element) -> Callback | None:
    """statusrequest/dlr-mask and dlr-url: a DLR is pushed only when both ask for one,
    as Kannel, without a sendsms-user default, does."""
    mask = _number(submit, "statusrequest/dlr-mask", "DLR-Mask", -1, MAX_DLR_MASK)
    url = _at(submit, "statusrequest/dlr-url")
    if not url or mask is None or mask <= 0 or not mask & KANNEL_ALL:  # -1: not given
        return None
    return Callback(CallbackKind.KANNEL, url, mask)


# --- answering ---------------------------------------------------------------------


def outcome_answer(numbers: Sequence[str], outcomes: Sequence[Outcome]) -> Response:
    accepted = [o for o in outcomes if isinstance(o, Accepted)]
    refused = [(n, o) for n, o in zip(numbers, outcomes, strict=True)
               if isinstance(o, Refused)]
    if not accepted:
        return _refusal_answer(refused[0][1])
    later = all(o.status is Status.SCHEDULED for o in accepted)
    text = QUEUED_LATER if later else ACCEPTED
    if refused:  # Kannel's immediate-reply wording, after the delayed reply's code
        text += ". Denied receivers are: " + " ".join(n for n, _ in refused)
    return answer(202, text)


def _refusal_answer(refusal: Refused) -> Response:
    if refusal.code in _DENIED:
        return answer(400, DENIED)
    if refusal.code in _NOT_ROUTABLE:
        return answer(403, NOT_ROUTABLE)
    return answer(400, f"{refusal.reason[:1].upper()}{refusal.reason[1:]}, rejected")


# --- the endpoint ------------------------------------------------------------------


def body_rules(max_body_bytes: int) -> list[BodyRule]:
    """The XML limit rather than the JSON one: a document may carry thousands of numbers."""
    def too_large(limit: int) -> Response:
        return answer(413, f"Request body over {limit} bytes, rejected", Connection="close")

    return [BodyRule(PATH, max_body_bytes, too_large)]


class KannelSendSms:
    def __init__(self, ctx: HttpContext, max_messages: int, logins: Logins) -> None:
        self.ctx = ctx
        self.max_messages = max_messages
        self.logins = logins

    async def post(self, request: Request) -> Response:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media in _HEADER_FORMS:
            return answer(415, "Unsupported content-type, rejected")
        if media not in ("text/xml", "application/xml"):
            return answer(400, "Invalid content-type")
        try:
            body = await request.body()
            parsed = await off_loop(len(body), read_submit, body, self.max_messages)
            account = await self.logins.check(client_address(request), parsed.user,
                                              parsed.password)
            if parsed.problem is not None:
                raise parsed.problem
            if not parsed.numbers:
                return answer(400, NO_RECEIVER)
            await self._check_dlr_url(parsed)
            return outcome_answer(parsed.numbers, await self._submit(account, parsed))
        except XmlProblem as problem:
            return answer(problem.status, _problem_text(problem))
        except BodyTooLarge:
            raise  # the app answers it with this path's own 413
        except Exception as exc:
            return refusal(self.ctx, self.logins, exc)

    async def _check_dlr_url(self, parsed: KannelRequest) -> None:
        sub = parsed.submission
        try:
            await check_dlr_url(self.ctx, sub.callback if sub else None)
        except ValueError as exc:
            raise XmlProblem(400, "field", str(exc)) from None

    async def _submit(self, account: Account, parsed: KannelRequest) -> list[Outcome]:
        sub = parsed.submission
        assert sub is not None  # read_submit always sets it
        return await submit_items(self.ctx, account,
                                  [replace(sub, to=n) for n in parsed.numbers])


def refusal(ctx: HttpContext, logins: Logins, exc: Exception) -> Response:
    """Kannel's answer to what stops a sendsms, its XML form and its HTTP form alike:
    a login refused (or not checked: too many failures from the address), the spool
    unable to take it, or a bug of ours, in Kannel's plain words all the same."""
    if isinstance(exc, LockedOut):
        return answer(403, AUTH_FAILED, **logins.retry_after())
    if isinstance(exc, AuthenticationError):
        return answer(403, AUTH_FAILED)
    if isinstance(exc, TemporaryFailure):  # Kannel's own words, then ours on what is wrong
        _, headers = temporarily(ctx, exc)
        return answer(503, f"{TEMPORARY} ({exc.reason})", **headers)
    log.error("unhandled error in sendsms", exc_info=exc, extra={"action": "sendsms"})
    return answer(500, TEMPORARY)


async def check_dlr_url(ctx: HttpContext, callback: Callback | None) -> None:
    """Refuse a dlr-url that leads where webhooks may not (ValueError with Kannel's
    words for a bad field)."""
    if callback is None or callback.url is None:
        return
    try:
        await check_target(callback.url, ctx.webhook_networks)
    except ForbiddenTarget as exc:
        raise ValueError(f"DLR-URL field misformed ({exc.reason}), rejected") from None


def _problem_text(problem: XmlProblem) -> str:
    # The hardened parser's own refusals (not XML, a DOCTYPE...) in Kannel's phrasing.
    if problem.code == "field":
        return problem.message
    return f"Invalid XML document ({problem.message}), rejected"
