"""The native XML API: `POST /xml` takes any request document of schemas/smshub-1.xsd (the
root element selects the operation) and answers with the matching response document."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from adapters.http.app import BodyRule, BodyTooLarge, HttpContext, temporarily
from adapters.xml.common import fetch_owned, list_replies, off_loop, submit_items
from adapters.xml.safety import SchemaValidator, XmlProblem, parse_untrusted
from hub import views
from hub.accounts import KeyExpired
from hub.clock import after, parse_time, utcnow
from hub.errors import AuthenticationError, Rejected, TemporaryFailure
from hub.model import (
    Accepted,
    Account,
    Inbound,
    Message,
    MessageClass,
    Outcome,
    Refused,
    Submission,
    record,
)

log = logging.getLogger(__name__)

NS = "urn:smshub:xml:1"
XSD = Path(__file__).resolve().parents[2] / "schemas" / "smshub-1.xsd"
MEDIA_TYPE = "application/xml"
PATH = "/xml"


def qname(name: str) -> str:
    """An element name in the native namespace, as lxml writes it ({ns}name)."""
    return f"{{{NS}}}{name}"


@dataclass(frozen=True, slots=True)
class XmlSettings:
    max_body_bytes: int
    max_messages: int


@dataclass(frozen=True, slots=True)
class DocCredentials:
    api_key: str | None = None
    account: str | None = None
    password: str | None = None


@record
class Item:
    """One message to one recipient, as found in the document (or already refused)."""

    message: int  # 1-based position of its <message>
    to: str
    client_ref: str | None
    submission: Submission | Refused


@dataclass
class NativeRequest:
    operation: str  # the root's local name
    credentials: DocCredentials | None
    items: list[Item] = field(default_factory=list)
    lookups: list[tuple[str, str]] = field(default_factory=list)  # ("id" | "clientRef", v)
    since: datetime | None = None  # repliesRequest


# --- documents in ------------------------------------------------------------------

# Messages (one per recipient) and status lookups: counted before the costlier validation.
_COUNT = etree.XPath("count(*/*[local-name()='to']) + "
                     "count(*[local-name()='id' or local-name()='clientRef'])")


def read_request(body: bytes, validator: SchemaValidator, limit: int, zone: str) -> NativeRequest:
    """Parse, limit, validate and extract; runs in a worker thread (CPU-bound)."""
    root = parse_untrusted(body)
    count = _COUNT(root)
    assert isinstance(count, float)
    if count > limit:
        raise XmlProblem(413, "too_many_messages",
                         f"{int(count)} messages in one document; the limit is {limit} "
                         "([xml] max_messages)")
    validator.validate(root)
    operation = etree.QName(root).localname
    request = NativeRequest(operation, _credentials(root.find(qname("credentials"))))
    if operation == "submitRequest":
        request.items = _items(root, zone)
    elif operation == "statusRequest":
        request.lookups = [(etree.QName(e).localname, (e.text or "").strip())
                           for e in root if e.tag in (qname("id"), qname("clientRef"))]
    elif operation == "repliesRequest":
        try:
            request.since = _time(root.findtext(qname("since")), zone)
        except Rejected as exc:  # valid xs:dateTime, yet before the first UTC moment
            raise XmlProblem(400, exc.code, exc.reason) from None
    return request


def _credentials(element: etree._Element | None) -> DocCredentials | None:
    if element is None:
        return None
    return DocCredentials(element.findtext(qname("apiKey")), element.findtext(qname("account")),
                          element.findtext(qname("password")))


_MESSAGE, _TO, _TEXT = qname("message"), qname("to"), qname("text")
_FROM, _REF = qname("from"), qname("clientRef")
_PRIORITY, _CLASS = qname("priority"), qname("class")
_SEND_AT, _EXPIRES_AT, _VALIDITY = qname("sendAt"), qname("expiresAt"), qname("validity")
_CLASSES = {c.value: c for c in MessageClass}
_SHARED_REF = ("a message with several recipients takes a clientRef attribute on each <to>, "
               "not one <clientRef>")


@record
class _Common:
    """What the recipients of one <message> share."""

    text: str
    sender: str | None
    send_at: datetime | None
    expires_at: datetime | None
    message_class: MessageClass
    priority: int


def _items(root: etree._Element, zone: str) -> list[Item]:
    items: list[Item] = []
    for number, message in enumerate(root.iterchildren(_MESSAGE), start=1):
        # One pass over the children (the schema fixed their names and order): findtext
        # per field costs more than parsing and validating the whole document, and
        # every `.tag` read builds a new string.
        recipients: list[etree._Element] = []
        fields: dict[str, str] = {}
        for child in message:
            tag = child.tag
            if tag == _TO:
                recipients.append(child)
            else:
                fields[tag] = child.text or ""
        shared_ref = fields.get(_REF)
        common: _Common | Refused
        try:
            common = _common(fields, zone)
        except Rejected as exc:
            common = Refused(exc.code, exc.reason)
        for to in recipients:
            own_ref = to.get("clientRef")
            ref = own_ref or shared_ref
            number_text = to.text or ""
            sub: Submission | Refused = common if isinstance(common, Refused) else Submission(
                number_text.strip(), common.text, common.sender, ref, common.send_at,
                common.expires_at, common.message_class, common.priority)
            if own_ref is None and shared_ref is not None and len(recipients) > 1:
                sub = Refused("invalid_client_ref", _SHARED_REF)
            items.append(Item(number, number_text, ref, sub))
    return items


def _common(fields: dict[str, str], zone: str) -> _Common:
    send_at = expires_at = None
    if _SEND_AT in fields or _EXPIRES_AT in fields or _VALIDITY in fields:
        send_at = _time(fields.get(_SEND_AT), zone)
        expires_at = _time(fields.get(_EXPIRES_AT), zone)
        validity = fields.get(_VALIDITY)
        if validity is not None:
            expires_at = after(send_at or utcnow(), int(validity))
    message_class = MessageClass.TRANSACTIONAL
    if _CLASS in fields:
        message_class = _CLASSES[fields[_CLASS]]
    priority = fields.get(_PRIORITY)
    return _Common(fields.get(_TEXT, ""), fields.get(_FROM), send_at, expires_at,
                   message_class, 0 if priority is None else int(priority))


def _time(value: str | None, zone: str) -> datetime | None:
    return None if value is None else parse_time(value, zone)


# --- documents out -----------------------------------------------------------------


def document(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def element(name: str, attrib: dict[str, str] | None = None, text: str | None = None,
            parent: etree._Element | None = None) -> etree._Element:
    node = (etree.Element(qname(name), nsmap={None: NS})  # type: ignore[dict-item]
            if parent is None
            else etree.SubElement(parent, qname(name)))
    for key, value in (attrib or {}).items():
        node.set(key, value)
    if text is not None:
        node.text = text
    return node


def xml_response(root: etree._Element, status: int = 200, **headers: str) -> Response:
    return Response(document(root), status, headers=headers, media_type=MEDIA_TYPE)


def error_xml(problem: XmlProblem, **headers: str) -> Response:
    root = element("error", {"code": problem.code})
    element("message", text=problem.message, parent=root)
    for v in problem.violations:
        attrib = {"path": v.path} if v.path else {}
        if v.line is not None:
            attrib["line"] = str(v.line)
        element("violation", attrib, v.reason, parent=root)
    return xml_response(root, problem.status, **headers)


def too_large_xml(limit: int) -> Response:
    return error_xml(XmlProblem(413, "body_too_large", f"the request body exceeds the limit "
                                f"of {limit} bytes ([xml] max_body_bytes)"), Connection="close")


def submit_document(items: Sequence[Item], outcomes: Sequence[Outcome]) -> bytes:
    """The submit answer, written as text: building 10,000 lxml elements with their
    attributes cost more per message than parsing and validating the request. Values
    that came from the client are escaped; ids, statuses and numbers are our own tokens."""
    accepted = sum(isinstance(o, Accepted) for o in outcomes)
    parts = [f'<?xml version=\'1.0\' encoding=\'UTF-8\'?>\n<submitResponse xmlns="{NS}" '
             f'accepted="{accepted}" rejected="{len(outcomes) - accepted}">']
    costs: dict[Decimal, str] = {}  # a document's messages mostly cost the same
    for item, outcome in zip(items, outcomes, strict=True):
        head = f"message=\"{item.message}\" to={quoteattr(item.to)}"
        if item.client_ref is not None:
            head += f" clientRef={quoteattr(item.client_ref)}"
        if isinstance(outcome, Refused):
            parts.append(f"<rejected {head} code=\"{outcome.code}\">{escape(outcome.reason)}"
                         "</rejected>")
            continue
        cost = costs.get(outcome.cost)
        if cost is None:
            cost = costs[outcome.cost] = views.money(outcome.cost)
        parts.append(f"<accepted {head} id=\"{outcome.message_id}\" "
                     f"status=\"{outcome.status.value}\" segments=\"{outcome.segments}\" "
                     f"cost=\"{cost}\" duplicate=\"{'true' if outcome.duplicate else 'false'}\"/>")
    parts.append("</submitResponse>")
    return "".join(parts).encode("utf-8")


def status_document(found: Sequence[tuple[tuple[str, str], Message | None]]) -> bytes:
    root = element("statusResponse")
    for (kind, value), message in found:
        if message is None:
            element("notFound", {kind: value}, _not_found_reason(kind), parent=root)
            continue
        node = element("message", _status_attributes(message), parent=root)
        if message.error is not None:
            element("error", {"code": message.error.code}, message.error.text, parent=node)
    return document(root)


def _not_found_reason(kind: str) -> str:
    if kind == "clientRef":
        return "no message with this client reference in this account"
    return "no message with this id in this account"


def replies_document(replies: Sequence[Inbound], more: bool) -> bytes:
    root = element("repliesResponse", {"more": "true"} if more else {})
    for r in replies:
        attrib = {"id": r.id, "from": r.sender, "to": r.recipient,
                  "receivedAt": r.received_at.isoformat(), "kind": r.kind.value}
        if r.in_reply_to is not None:
            attrib["inReplyTo"] = r.in_reply_to
        element("reply", attrib, r.text, parent=root)
    return document(root)


def _status_attributes(m: Message) -> dict[str, str]:
    attrib = {"id": m.id, "to": m.recipient, "status": m.status.value,
              "state": m.status.public.value, "segments": str(m.segments),
              "cost": views.money(m.cost), "acceptedAt": m.accepted_at.isoformat(),
              "updatedAt": m.updated_at.isoformat()}
    if m.client_ref is not None:
        attrib["clientRef"] = m.client_ref
    if m.completed_at is not None:
        attrib["completedAt"] = m.completed_at.isoformat()
    if views.held_view(m) is not None:  # CPA hours: the <error> element says why
        attrib["heldUntil"] = m.due_at.isoformat()
    return attrib


# --- the endpoint ------------------------------------------------------------------


def routes(ctx: HttpContext, settings: XmlSettings) -> list[BaseRoute]:
    api = XmlApi(ctx, settings)
    return [Route(PATH, api.post, methods=["POST"])]


def body_rules(settings: XmlSettings) -> list[BodyRule]:
    return [BodyRule(PATH, settings.max_body_bytes, too_large_xml)]


class XmlApi:
    def __init__(self, ctx: HttpContext, settings: XmlSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.validator = SchemaValidator(XSD)
        self._operations: dict[str, Callable[[Account, NativeRequest], Awaitable[Response]]] = {
            "submitRequest": self._submit, "statusRequest": self._status,
            "balanceRequest": self._balance, "repliesRequest": self._replies,
        }

    async def post(self, request: Request) -> Response:
        try:
            body = await request.body()
            parsed = await off_loop(len(body), read_request, body, self.validator,
                                    self.settings.max_messages, self.ctx.timezone)
            operation = self._operations.get(parsed.operation)
            if operation is None:  # a valid response document posted as a request
                raise XmlProblem(400, "unknown_operation",
                                 f"<{parsed.operation}> is not a request document")
            account = await authenticate(self.ctx, request, parsed.credentials)
            answer = await operation(account, parsed)
            self.ctx.unavailable.cleared()
            return answer
        except XmlProblem as problem:
            return error_xml(problem)
        except AuthenticationError as exc:
            code = "key_expired" if isinstance(exc, KeyExpired) else "unauthorized"
            return error_xml(XmlProblem(401, code, str(exc)),
                             **{"WWW-Authenticate": 'Basic realm="smshub"'})
        except TemporaryFailure as exc:
            words, headers = temporarily(self.ctx, exc)
            return error_xml(XmlProblem(503, "unavailable", words), **headers)
        except BodyTooLarge:
            raise  # the app answers it with this path's own 413
        except Exception:  # a bug of ours, answered in this API's own format all the same
            log.exception("unhandled error in %s", PATH, extra={"action": "xml"})
            return error_xml(XmlProblem(500, "internal_error",
                                        "the hub failed to handle the request"))

    async def _submit(self, account: Account, parsed: NativeRequest) -> Response:
        outcomes = await submit_items(self.ctx, account, [i.submission for i in parsed.items])
        body = await off_loop(len(outcomes) * 100, submit_document, parsed.items, outcomes)
        accepted = any(isinstance(o, Accepted) for o in outcomes)
        return Response(body, 200 if accepted else 422, media_type=MEDIA_TYPE)

    async def _status(self, account: Account, parsed: NativeRequest) -> Response:
        ids = [value for kind, value in parsed.lookups if kind == "id"]
        refs = [value for kind, value in parsed.lookups if kind == "clientRef"]
        by_id, by_ref = await fetch_owned(self.ctx.runner, account, ids, refs)
        found = [(lookup, (by_id if lookup[0] == "id" else by_ref).get(lookup[1]))
                 for lookup in parsed.lookups]
        return Response(status_document(found), media_type=MEDIA_TYPE)

    async def _balance(self, account: Account, parsed: NativeRequest) -> Response:
        # A fresh read: the authenticated Account may come from the credential cache.
        fresh = await self.ctx.runner.call(self.ctx.runner.spool.get_account_by_id, account.id)
        return xml_response(element("balanceResponse", {
            "account": fresh.name, "balance": views.money(fresh.balance),
            "pricePerSegment": views.money(fresh.price_per_segment)}))

    async def _replies(self, account: Account, parsed: NativeRequest) -> Response:
        # One more than the limit tells whether the client must ask again.
        limit = self.settings.max_messages
        found = await list_replies(self.ctx.runner, account, parsed.since, limit + 1)
        body = await off_loop(len(found) * 100, replies_document, found[:limit],
                              len(found) > limit)
        return Response(body, media_type=MEDIA_TYPE)


async def authenticate(ctx: HttpContext, request: Request,
                       in_document: DocCredentials | None) -> Account:
    """An Authorization header (Bearer API key or Basic account:password) wins over
    credentials inside the document."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return await ctx.credentials.by_api_key(value.strip())
        if scheme.lower() == "basic":
            name, password = _basic(value.strip())
            return await ctx.credentials.by_password(name, password)
        raise AuthenticationError("the Authorization header must be Bearer or Basic")
    if in_document is not None and in_document.api_key:
        return await ctx.credentials.by_api_key(in_document.api_key)
    if in_document is not None and in_document.account:
        return await ctx.credentials.by_password(in_document.account,
                                                 in_document.password or "")
    raise AuthenticationError("send 'Authorization: Bearer <api key>', HTTP Basic, or "
                              "<credentials> in the document")


def _basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationError("malformed Basic credentials") from None
    name, sep, password = decoded.partition(":")
    if not sep or not name:
        raise AuthenticationError("malformed Basic credentials")
    return name, password
