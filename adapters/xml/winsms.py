"""WinSMS's XML API at the paths the original uses (`/api/xmlsendsmsmulti.asp`,
`XMLGetStatus.asp`, `XMLGetReplies.asp`), read leniently as real clients write it and
answered in WinSMS's tokens; see docs/xml.md for the choices where WinSMS is undocumented."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote, unquote_plus
from zoneinfo import ZoneInfo

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from adapters.http.app import BodyRule, BodyTooLarge, HttpContext, temporarily
from adapters.http.logins import LockedOut, Logins, client_address
from adapters.vendors import winsms
from adapters.xml.common import fetch_owned, list_replies, off_loop, submit_items
from adapters.xml.safety import XmlProblem, parse_untrusted
from hub import cpa
from hub.clock import utcnow
from hub.errors import AuthenticationError, Rejected, TemporaryFailure
from hub.model import Account, Inbound, Message, Outcome, Refused, Status, Submission
from hub.numbers import with_plus

log = logging.getLogger(__name__)

SA_TIME = ZoneInfo("Africa/Johannesburg")  # WinSMS schedules are SA time whatever our zone
MAX_NUMBERS = 1000  # WinSMS's business rule, across all messages of one document
REPLIES_WINDOW = timedelta(days=7)  # replies answered when no <Since> is given
MEDIA_TYPE = "application/xml"

# Our refusal codes as the tokens WinSMS clients check for (batchmessage.asp's grammar).
_TOKENS = {"invalid_number": "BADDEST", "insufficient_credit": "NOCREDITS",
           "account_disabled": "ACCOUNTLOCKED"}
_STATUS = {
    Status.ACCEPTED: "INQUEUE", Status.QUEUED: "INQUEUE", Status.SENDING: "INQUEUE",
    Status.SCHEDULED: "SCHEDULED", Status.SUBMITTED: "SENT", Status.DELIVERED: "DELIVERED",
    Status.UNDELIVERED: "FAILED", Status.REJECTED: "FAILED", Status.FAILED: "FAILED",
    Status.EXPIRED: "EXPIRED", Status.CANCELLED: "DELETED",
}


@dataclass
class WinSmsRequest:
    root: str  # lower-cased local name
    user: str
    password: str
    numbers: list[str] = field(default_factory=list)
    submissions: list[Submission | Refused] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    since: datetime | None = None  # replies; an smshub extension


# --- reading -----------------------------------------------------------------------


def _name(element: etree._Element) -> str:
    return etree.QName(element).localname.lower() if isinstance(element.tag, str) else ""


def _children(element: etree._Element, *names: str) -> list[etree._Element]:
    """Children by local name, in any case: ASP clients were never strict about it."""
    return [c for c in element if _name(c) in names]


def _text(element: etree._Element, *names: str) -> str | None:
    found = _children(element, *names)
    return None if not found else (found[0].text or "").strip()


def read_winsms(body: bytes, expected: str) -> WinSmsRequest:
    """Parse one WinSMS document; runs in a worker thread."""
    root = parse_untrusted(body)
    if _name(root) != expected.lower():
        raise XmlProblem(400, "INVALID", f"expected a <{expected}> document")
    request = WinSmsRequest(_name(root), _text(root, "user") or "",
                            _text(root, "password") or "")
    if request.root == "winsms_multi_message":
        _read_messages(root, request)
    elif request.root == "winsms_statusrequest":
        for block in _children(root, "messageids"):
            request.ids += [_text(m, "id") or "" for m in _children(block, "messageid")]
    elif request.root == "winsms_replies":
        try:
            request.since = scheduled(_text(root, "since"))
        except Rejected as exc:
            raise XmlProblem(400, "INVALID", exc.reason) from None
    return request


def _read_messages(root: etree._Element, request: WinSmsRequest) -> None:
    try:  # <Schedule> too: a published client library writes that instead of <Scheduled>
        send_at = scheduled(_text(root, "scheduled", "schedule"))
        refused: Refused | None = None
    except Rejected as exc:
        send_at, refused = None, Refused(exc.code, exc.reason)
    for block in _children(root, "messages"):
        for message in _children(block, "message"):
            text = unquote_plus(_text(message, "messagetext") or "")
            for numbers in _children(message, "numbers"):
                for number in _children(numbers, "number"):
                    to = (number.text or "").strip()
                    request.numbers.append(to)
                    request.submissions.append(
                        refused or Submission(with_plus(to), text, send_at=send_at))
    if not request.numbers:  # a document of another shape must not look like success
        raise XmlProblem(400, "INVALID", "no number to send to: a WinSMS_Multi_Message holds "
                         "<Messages><Message><MessageText/><Numbers><Number/></Numbers>"
                         "</Message></Messages>")
    if len(request.numbers) > MAX_NUMBERS:
        raise XmlProblem(413, "INVALID", f"{len(request.numbers)} numbers in one document; "
                         f"WinSMS allows {MAX_NUMBERS}")


def scheduled(value: str | None) -> datetime | None:
    """`CCYYMMDDHHmm` in South African time; empty means now."""
    if not value:
        return None
    try:
        return winsms.parse_time(value, SA_TIME)
    except ValueError as exc:
        raise Rejected("invalid_time", str(exc)) from None


# --- answering ---------------------------------------------------------------------


def _document(root: etree._Element, status: int = 200, **headers: str) -> Response:
    body = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return Response(body, status, headers=headers, media_type=MEDIA_TYPE)


def _sub(parent: etree._Element, name: str, text: str) -> None:
    etree.SubElement(parent, name).text = text


def error_document(token: str, status: int = 200, detail: str = "", **headers: str
                   ) -> Response:
    root = etree.Element("WinSMS_Response")
    _sub(root, "Error", token)
    if detail:
        _sub(root, "Description", detail)
    return _document(root, status, **headers)


def send_document(numbers: Sequence[str], outcomes: Sequence[Outcome]) -> Response:
    root = etree.Element("WinSMS_Response")
    for number, outcome in zip(numbers, outcomes, strict=True):
        node = etree.SubElement(root, "Message")
        _sub(node, "Number", number)
        if isinstance(outcome, Refused):
            _sub(node, "Error", _TOKENS.get(outcome.code, "INVALID"))
            _sub(node, "Description", outcome.reason)
        else:
            _sub(node, "MessageID", outcome.message_id)
    return _document(root)


def status_document(ids: Sequence[str], found: dict[str, Message]) -> Response:
    root = etree.Element("WinSMS_StatusResponse")
    for ident in ids:
        node = etree.SubElement(root, "MessageID")
        _sub(node, "ID", ident)
        message = found.get(ident)
        _sub(node, "Status", "NOTFOUND" if message is None else _STATUS[message.status])
        held = None if message is None else cpa.held(message)
        if held is not None:  # CPA regulation 4: why, and when it may go (as WinSMS writes times)
            _sub(node, "Description", held[0])
            _sub(node, "Scheduled", winsms.format_time(held[1], SA_TIME))
    return _document(root)


def replies_document(replies: Sequence[Inbound]) -> Response:
    root = etree.Element("WinSMS_RepliesResponse")
    for r in replies:
        node = etree.SubElement(root, "Reply")
        _sub(node, "ID", r.id)
        _sub(node, "Number", r.sender.lstrip("+"))  # WinSMS writes numbers without '+'
        _sub(node, "MessageText", quote(r.text, safe=""))  # URL-encoded, as sent to us
        _sub(node, "Received", winsms.format_time(r.received_at, SA_TIME))
        if r.in_reply_to is not None:
            _sub(node, "MessageID", r.in_reply_to)
    return _document(root)


# --- the endpoints -----------------------------------------------------------------


_Handler = Callable[[Account, WinSmsRequest], Awaitable[Response]]


# IIS paths are case-insensitive: serve the spellings clients are seen to use.
_SPELLINGS = {"xmlsendsmsmulti.asp": "XMLSendSMSMulti.asp",
              "xmlgetstatus.asp": "XMLGetStatus.asp", "xmlgetreplies.asp": "XMLGetReplies.asp"}


def _paths(page: str) -> list[str]:
    return [f"/api/{p}" for p in dict.fromkeys((page, _SPELLINGS[page]))]


def routes(ctx: HttpContext, logins: Logins) -> list[BaseRoute]:
    api = WinSmsXml(ctx, logins)
    pages: dict[str, tuple[str, _Handler]] = {
        "xmlsendsmsmulti.asp": ("WinSMS_Multi_Message", api.send),
        "xmlgetstatus.asp": ("WinSMS_StatusRequest", api.status),
        "xmlgetreplies.asp": ("WinSMS_Replies", api.replies),
    }
    out: list[BaseRoute] = []
    for page, (root, handler) in pages.items():
        endpoint = api.endpoint(root, handler)
        out += [Route(path, endpoint, methods=["POST"]) for path in _paths(page)]
    return out


def body_rules(max_body_bytes: int) -> list[BodyRule]:
    """The XML limit, not the JSON one (a document may carry 1,000 numbers), answered as a
    WinSMS document rather than the JSON API's error."""
    def too_large(limit: int) -> Response:
        answer = error_document("INVALID", 413, f"the request body exceeds {limit} bytes")
        answer.headers["Connection"] = "close"
        return answer

    return [BodyRule(path, max_body_bytes, too_large)
            for page in _SPELLINGS for path in _paths(page)]


class WinSmsXml:
    def __init__(self, ctx: HttpContext, logins: Logins) -> None:
        self.ctx = ctx
        self.logins = logins

    def endpoint(self, root: str, handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                body = await request.body()
                parsed = await off_loop(len(body), read_winsms, body, root)
                account = await self.logins.check(client_address(request), parsed.user,
                                                  parsed.password)
                return await handler(account, parsed)
            except XmlProblem as problem:
                return error_document(problem.code if problem.code.isupper() else "INVALID",
                                      problem.status, problem.message)
            except LockedOut:  # too many failed logins from this address
                return error_document("ACCOUNTLOCKED", 200, **self.logins.retry_after())
            except AuthenticationError:
                return error_document("FAIL")  # WinSMS's Login=FAIL, as a document
            except TemporaryFailure as exc:
                words, headers = temporarily(self.ctx, exc)
                return error_document("BUSY", 503, words, **headers)
            except BodyTooLarge:
                raise  # the app answers it with this path's own 413
            except Exception:  # a bug of ours, answered as a WinSMS document all the same
                log.exception("unhandled error in %s", root, extra={"action": "xml"})
                return error_document("ERROR", 500, "the hub failed to handle the request")

        return handle

    async def send(self, account: Account, parsed: WinSmsRequest) -> Response:
        outcomes = await submit_items(self.ctx, account, parsed.submissions)
        return send_document(parsed.numbers, outcomes)

    async def status(self, account: Account, parsed: WinSmsRequest) -> Response:
        owned, _ = await fetch_owned(self.ctx.runner, account, parsed.ids)
        return status_document(parsed.ids, owned)

    async def replies(self, account: Account, parsed: WinSmsRequest) -> Response:
        # WinSMS filters opt-outs out of replies (they are kept apart), so we do too.
        since = parsed.since or utcnow() - REPLIES_WINDOW
        found = await list_replies(self.ctx.runner, account, since, MAX_NUMBERS,
                                   opt_outs=False)
        return replies_document(found)
