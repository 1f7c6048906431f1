"""Clickatell's XML API at `/xml/xml` (GET or POST, the document in the `data` field):
each command of a `<clickAPI>` document (auth, ping, sendMsg, queryMsg, getMsgCharge,
getBalance) is answered by a `<commandResp>` holding its result or a `<fault>`."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response

from adapters.http.app import BodyRule, BodyTooLarge, HttpContext, temporarily
from adapters.http.logins import LockedOut, Logins, client_address
from adapters.vendors.clickatell import STATUSES, fault_text, refusal_fault, ucs2_hex
from adapters.xml.common import fetch_owned, off_loop, submit_items
from adapters.xml.safety import XmlProblem, parse_untrusted
from hub import cpa, text, views
from hub.clock import Clock, utcnow
from hub.errors import AuthenticationError, TemporaryFailure
from hub.model import (
    Account,
    Callback,
    CallbackKind,
    Message,
    Outcome,
    Refused,
    Submission,
)
from hub.numbers import with_plus
from hub.ports import AccountStore
from hub.pushes import CLICKATELL_ALL
from hub.spoolcall import SpoolThreads

log = logging.getLogger(__name__)

PATH = "/xml/xml"
MEDIA_TYPE = "text/xml"
SESSION_IDLE = 900.0  # Clickatell sessions expire after 15 minutes without use
# A use moves a session's expiry in the spool once it would move it this much.
SESSION_REFRESH = 60.0
MAX_SESSIONS = 10_000


class Fault(Exception):
    """A command answered with `<fault>`: Clickatell's error code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.text = fault_text(code)


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # as the client wrote it, e.g. "sendMsg"
    fields: dict[str, list[str]]  # lower-cased child names -> their texts, in order
    address: str = ""  # the client's: failed logins are counted per address

    def get(self, key: str) -> str | None:
        values = self.fields.get(key)
        return values[0].strip() if values else None

    def number(self, key: str, fault: str, low: int, high: int) -> int | None:
        value = self.get(key)
        if not value:
            return None
        if not value.isdigit() or not low <= int(value) <= high:
            raise Fault(fault)
        return int(value)


# --- reading -----------------------------------------------------------------------


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def read_clickapi(data: bytes, limit: int) -> list[Command]:
    """The commands of one `<clickAPI>` document; runs in a worker thread."""
    root = parse_untrusted(data)
    if _local(root).lower() != "clickapi":
        raise XmlProblem(400, "101", "the document is not a <clickAPI>")
    commands = [Command(_local(c), _fields(c)) for c in root if isinstance(c.tag, str)]
    count = sum(len(recipients(c)) for c in commands if c.name.lower() == "sendmsg")
    if count > limit:
        raise XmlProblem(413, "101", f"{count} recipients in one document; the limit is "
                         f"{limit} ([xml] max_messages)")
    return commands


def _fields(command: etree._Element) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for child in command:
        if isinstance(child.tag, str):
            fields.setdefault(_local(child).lower(), []).append(child.text or "")
    return fields


def recipients(command: Command) -> list[str]:
    """`<to>` repeated, or a comma-separated list in one `<to>`, as HTTP clients send."""
    return [n.strip() for to in command.fields.get("to", []) for n in to.split(",")
            if n.strip()]


def message_text(command: Command) -> str:
    body = command.get("text") or ""
    if command.get("unicode") != "1":
        return body
    try:
        return ucs2_hex(body)
    except ValueError:  # the XML API has an answer for it, unlike the key:value ones
        raise Fault("116") from None


def submissions(command: Command, now: datetime) -> list[Submission | Refused]:
    """One submission per recipient; parameter faults fail the whole command."""
    numbers = recipients(command)
    if not numbers:
        raise Fault("101")
    body = message_text(command)
    delay = command.number("deliv_time", "120", 0, 10_080)  # minutes, up to 7 days
    send_at = None if not delay else now + timedelta(minutes=delay)
    validity = command.number("validity", "101", 1, 10_080 * 4)  # minutes
    expires_at = (None if validity is None
                  else (send_at or now) + timedelta(minutes=validity))
    queue = command.number("queue", "101", 1, 3)  # 1 is Clickatell's most urgent
    priority = 0 if queue is None else 3 - queue
    ref = command.get("climsgid") or None
    sub = Submission("", body, command.get("from") or None, ref, send_at, expires_at,
                     priority=priority, callback=callback(command))
    refused = _refusal(command, body, ref, len(numbers))
    # `to` is international without its '+', as Clickatell documents it.
    return [refused or replace(sub, to=with_plus(n)) for n in numbers]


def callback(command: Command) -> Callback | None:
    """`callback` (or `msg_callback`), 0-7: which statuses are pushed to the account's
    callback URL (`smshub account pushes --clickatell`), as Clickatell keeps the URL with
    the API connection rather than on the request."""
    value = command.number("callback", "101", 0, CLICKATELL_ALL)
    if value is None:
        value = command.number("msg_callback", "101", 0, CLICKATELL_ALL)
    if not value:
        return None
    return Callback(CallbackKind.CLICKATELL, None, value, command.get("api_id") or None)


def _refusal(command: Command, body: str, ref: str | None, count: int) -> Refused | None:
    if ref is not None and count > 1:
        # One client reference names one SMS; sharing it would make the rest duplicates.
        return Refused("invalid_client_ref", "climsgid with several recipients")
    concat = command.number("concat", "101", 1, 255)
    if concat is not None and body and text.measure(body)[2] > concat:
        return Refused("too_long", f"the text needs more than concat={concat} parts")
    return None


async def request_data(request: Request) -> bytes:
    """The `data` field of the query or a form body; a raw XML body is taken too."""
    body = await request.body() if request.method == "POST" else b""
    if body.lstrip().startswith(b"<"):
        return body
    query: bytes = request.scope.get("query_string", b"")
    for source in (body, query):
        # latin-1 keeps the decoded bytes as they were: lxml then honours the
        # document's own encoding declaration.
        for key, value in parse_qsl(source.decode("latin-1"), encoding="latin-1"):
            if key.lower() == "data":
                return value.encode("latin-1")
    raise XmlProblem(400, "101", "no data field with a <clickAPI> document")


# --- answering ---------------------------------------------------------------------


def resp(command: Command, fields: Sequence[tuple[str, str]]) -> etree._Element:
    node = etree.Element(f"{command.name}Resp")
    for name, value in fields:
        etree.SubElement(node, name).text = value
    sequence = command.get("sequence_no")
    if sequence is not None:
        etree.SubElement(node, "sequence_no").text = sequence
    return node


def document(answers: Sequence[etree._Element], status: int = 200,
             **headers: str) -> Response:
    root = etree.Element("clickAPI")
    root.extend(answers)
    return Response(etree.tostring(root, xml_declaration=True, encoding="UTF-8"), status,
                    headers=headers, media_type=MEDIA_TYPE)


def error_document(status: int, detail: str, **headers: str) -> Response:
    node = etree.Element("xmlErrorResp")
    etree.SubElement(node, "fault").text = fault_text("101")
    etree.SubElement(node, "description").text = detail
    return document([node], status, **headers)


def send_answers(command: Command, numbers: Sequence[str],
                 outcomes: Sequence[Outcome]) -> list[etree._Element]:
    several = len(numbers) > 1  # like HTTP's "ID: x To: y", only for several
    answers = []
    for number, outcome in zip(numbers, outcomes, strict=True):
        fields = ([("fault", refusal_fault(outcome.code))] if isinstance(outcome, Refused)
                  else [("apiMsgId", outcome.message_id)])
        answers.append(resp(command, fields + ([("to", number)] if several else [])))
    return answers


def status_fields(message: Message, command: Command,
                  charge: bool) -> list[tuple[str, str]]:
    fields = [("apiMsgId", message.id), ("status", STATUSES[message.status])]
    if command.get("climsgid") and not command.get("apimsgid"):
        fields.append(("cliMsgId", command.get("climsgid") or ""))
    if charge:
        fields.append(("charge", views.money(message.cost)))
    description = held_description(message)
    if description is not None:
        fields.append(("description", description))
    return fields


# A letter right before a colon: the HTTP API's readers take `Word:` for the next key.
_KEY_LIKE = re.compile(r"(?<=[A-Za-z]):")


def held_description(message: Message) -> str | None:
    """Why a marketing message is held (status 011, CPA regulation 4) and its next allowed
    moment, in words that read as one value in the XML and HTTP answers; None otherwise."""
    found = cpa.held(message)
    if found is None:
        return None
    return _KEY_LIKE.sub(",", found[0])


# --- sessions and the endpoint -------------------------------------------------------


class Sessions:
    """Session ids from `auth` (32 hex characters, like Clickatell's), each valid until
    15 minutes after its last use, to within `refresh`. They live in the spool (by a
    digest), so that every process and node sharing it knows them; this process
    remembers the ones it has seen, and writes a use to the spool only when the expiry
    stored there is more than `refresh` behind the one the use gives: a client sending
    steadily on a session costs a spool write a minute, not one a request."""

    def __init__(self, runner: SpoolThreads[AccountStore], idle: float = SESSION_IDLE,
                 clock: Clock = utcnow, refresh: float = SESSION_REFRESH) -> None:
        self._runner = runner
        self._idle = timedelta(seconds=idle)
        self._refresh = timedelta(seconds=refresh)
        self._clock = clock
        # id -> (account id, expiry as the spool has it), the least recently used first.
        self._known: dict[str, tuple[int, datetime]] = {}

    async def open(self, account_id: int) -> str:
        token = secrets.token_hex(16)
        now = self._clock()
        until = now + self._idle
        runner = self._runner
        await runner.call(runner.spool.open_dialect_session, _digest(token), account_id,
                          until, now)
        self._remember(token, (account_id, until))
        return token

    async def account_id(self, token: str) -> int | None:
        """The session's account, extending the session; None if unknown or expired."""
        if not _SESSION_ID.fullmatch(token):  # not one of ours: no need to ask the spool
            return None
        now = self._clock()
        runner, digest = self._runner, _digest(token)
        found = self._known.pop(token, None)
        if found is None or found[1] < now:  # unknown here, or extended elsewhere since
            found = await runner.call(runner.spool.dialect_session, digest, now)
            if found is None:
                return None
        until = now + self._idle
        if until - found[1] > self._refresh:
            extended = await runner.call(runner.spool.extend_dialect_session, digest,
                                         until, now)
            if not extended:
                return None
            found = (found[0], until)
        self._remember(token, found)
        return found[0]

    def _remember(self, token: str, found: tuple[int, datetime]) -> None:
        if len(self._known) >= MAX_SESSIONS:
            self._known.pop(next(iter(self._known)))  # the least recently used
        self._known[token] = found


_SESSION_ID = re.compile(r"[0-9a-f]{32}")  # as `open` makes them


def _digest(token: str) -> str:
    # A session id is 128 random bits: a plain hash keeps a reader of the spool from
    # using the ids it finds there, and nothing weaker than the id can be guessed.
    return hashlib.sha256(token.encode()).hexdigest()


_Handler = Callable[[Command], Awaitable[list[etree._Element]]]


def body_rules(max_body_bytes: int) -> list[BodyRule]:
    """Before the native `/xml` rule, so a too-large body is answered Clickatell's way."""
    def too_large(limit: int) -> Response:
        return error_document(413, f"the request body exceeds {limit} bytes",
                              Connection="close")

    return [BodyRule(PATH, max_body_bytes, too_large)]


class ClickatellXml:
    """The XML API; its sessions, `account` and `message` serve the HTTP commands too
    (adapters/http/dialects/clickatell.py)."""

    def __init__(self, ctx: HttpContext, max_messages: int, logins: Logins) -> None:
        self.ctx = ctx
        self.max_messages = max_messages
        self.logins = logins
        self.sessions = Sessions(ctx.runner)
        self._commands: dict[str, _Handler] = {
            "auth": self._auth, "ping": self._ping, "sendmsg": self._send,
            "querymsg": self._query, "getmsgcharge": self._charge,
            "getbalance": self._balance,
        }

    async def handle(self, request: Request) -> Response:
        try:
            data = await request_data(request)
            commands = await off_loop(len(data), read_clickapi, data, self.max_messages)
            address = client_address(request)
            return document([a for c in commands
                             for a in await self._answer(replace(c, address=address))])
        except XmlProblem as problem:
            return error_document(problem.status, problem.message)
        except TemporaryFailure as exc:
            words, headers = temporarily(self.ctx, exc)
            return error_document(503, words, **headers)
        except BodyTooLarge:
            raise  # the app answers it with this path's own 413
        except Exception:  # a bug of ours, answered as a Clickatell document all the same
            log.exception("unhandled error in /xml/xml", extra={"action": "xml"})
            return error_document(500, "the hub failed to handle the request")

    async def _answer(self, command: Command) -> list[etree._Element]:
        handler = self._commands.get(command.name.lower())
        try:
            if handler is None:
                raise Fault("101")  # delMsg, routeCoverage...: not served
            return await handler(command)
        except Fault as fault:
            return [resp(command, [("fault", fault.text)])]
        except LockedOut:  # too many failed logins from this address: not checked
            return [resp(command, [("fault", fault_text("007"))])]

    async def account(self, command: Command) -> Account:
        """By `session_id`, or by name and password (or API key): Fault 003 or 001,
        LockedOut for an address with too many failed logins."""
        session = command.get("session_id")
        if session:
            account_id = await self.sessions.account_id(session)
            if account_id is None:
                raise Fault("003")
            runner = self.ctx.runner
            return await runner.call(runner.spool.get_account_by_id, account_id)
        try:
            return await self.logins.check(command.address, command.get("user"),
                                           command.get("password"))
        except LockedOut:
            raise
        except AuthenticationError:
            raise Fault("001") from None

    async def _auth(self, command: Command) -> list[etree._Element]:
        account = await self.account(command)
        return [resp(command, [("session_id", await self.sessions.open(account.id))])]

    async def _ping(self, command: Command) -> list[etree._Element]:
        await self.account(command)
        return [resp(command, [("ok", "")])]

    async def _send(self, command: Command) -> list[etree._Element]:
        account = await self.account(command)
        parsed = submissions(command, utcnow())
        outcomes = await submit_items(self.ctx, account, parsed)
        return send_answers(command, recipients(command), outcomes)

    async def _query(self, command: Command) -> list[etree._Element]:
        message = await self.message(command)
        return [resp(command, status_fields(message, command, charge=False))]

    async def _charge(self, command: Command) -> list[etree._Element]:
        message = await self.message(command)
        return [resp(command, status_fields(message, command, charge=True))]

    async def message(self, command: Command) -> Message:
        """The account's message by `apimsgid` or `climsgid`: Fault 103, 104 or 109."""
        account = await self.account(command)
        api_id, cli_id = command.get("apimsgid"), command.get("climsgid")
        if api_id:
            by_id, _ = await fetch_owned(self.ctx.runner, account, [api_id])
            return _found(by_id.get(api_id), "103")
        if cli_id:
            _, by_ref = await fetch_owned(self.ctx.runner, account, [], [cli_id])
            return _found(by_ref.get(cli_id), "104")
        raise Fault("109")

    async def _balance(self, command: Command) -> list[etree._Element]:
        account = await self.account(command)
        # A fresh read: the authenticated Account may come from the credential cache.
        runner = self.ctx.runner
        fresh = await runner.call(runner.spool.get_account_by_id, account.id)
        return [resp(command, [("ok", views.money(fresh.balance))])]


def _found(message: Message | None, code: str) -> Message:
    if message is None:
        raise Fault(code)
    return message
