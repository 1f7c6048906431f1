"""Clickatell's HTTP API (`/http/auth`, `ping`, `sendmsg`, `querymsg`, `getmsgcharge`,
`getbalance`, `delmsg`; GET or POST), answered in its `ID:`/`ERR:` lines. A command's
parameters are read as the XML API reads the same command's fields (one reader), and
logins, sessions and message lookups are the XML API's: a `session_id` from either
works on both."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.http.app import HttpContext, Prompt, PromptRoute, temporarily
from adapters.http.dialects.common import fresh_account, staged_prompt, submit
from adapters.http.dialects.params import BadParameters, Params, decode, parsed, read
from adapters.http.dialects.paths import CLICKATELL_COMMANDS
from adapters.http.logins import LockedOut, Logins, client_address
from adapters.vendors.clickatell import STATUSES, fault_text, refusal_fault
from adapters.xml.clickatell import (
    PATH as XML_PATH,
)
from adapters.xml.clickatell import (
    ClickatellXml,
    Command,
    Fault,
    held_description,
    recipients,
    submissions,
)
from hub import views
from hub.clock import utcnow
from hub.errors import TemporaryFailure
from hub.model import Message, Outcome, Refused, Submission

log = logging.getLogger(__name__)

_Handler = Callable[[Command], Awaitable[str]]


@runtime_checkable
class Cancelling(Protocol):
    """A spool that cancels unsent messages (the operators' role; ours does): `delmsg`."""

    def cancel(self, ids: Sequence[str], account_id: int | None, now: datetime) -> int: ...


def _lines(text: str, status: int = 200, **headers: str) -> Response:
    return PlainTextResponse(text, status, headers=headers)


def command(name: str, params: Params, address: str = "") -> Command:
    """The parameters as a command's fields: names without case, values in order."""
    fields: dict[str, list[str]] = {}
    for key, value in params.pairs:
        fields.setdefault(key.lower(), []).append(decode(value))
    return Command(name, fields, address)


def send_lines(numbers: Sequence[str], outcomes: Sequence[Outcome]) -> str:
    """`ID: <apimsgid>` or `ERR: <code>, <text>`; with several numbers one line each,
    ending ` To: <number>`."""
    lines = [f"ERR: {refusal_fault(o.code)}" if isinstance(o, Refused) else f"ID: {o.message_id}"
             for o in outcomes]
    if len(numbers) > 1:
        lines = [f"{line} To: {number}" for line, number in zip(lines, numbers, strict=True)]
    return "\n".join(lines)


def _held(message: Message, key: str) -> str:
    """` Description: <why and until when>` after the status of a message held by CPA
    regulation 4 (status 011); nothing for any other message, whose line stays as it was."""
    description = held_description(message)
    return "" if description is None else f" {key}: {description}"


def routes(ctx: HttpContext, max_messages: int, logins: Logins) -> list[BaseRoute]:
    """The XML API at /xml/xml and the HTTP commands, sharing one session store."""
    xml = ClickatellXml(ctx, max_messages, logins)
    api = ClickatellHttp(ctx, xml, logins, max_messages)
    commands: dict[str, _Handler] = {
        "auth": api.auth, "ping": api.ping, "sendmsg": api.send, "querymsg": api.query,
        "getmsgcharge": api.charge, "getbalance": api.balance, "delmsg": api.delete}
    assert set(commands) == set(CLICKATELL_COMMANDS)
    return [Route(XML_PATH, xml.handle, methods=["GET", "POST"]),
            *(PromptRoute(f"/http/{name}", api.endpoint(name, handler), prompt=api.prompt,
                          methods=["GET", "POST"]) if name == "sendmsg" else
              Route(f"/http/{name}", api.endpoint(name, handler), methods=["GET", "POST"])
              for name, handler in commands.items())]


class ClickatellHttp:
    """The commands, each a line or lines of text; the XML API's object does logins,
    sessions and lookups."""

    def __init__(self, ctx: HttpContext, xml: ClickatellXml, logins: Logins,
                 max_messages: int) -> None:
        self.ctx = ctx
        self.xml = xml
        self.sessions = xml.sessions
        self.logins = logins
        self.max_messages = max_messages

    def endpoint(self, name: str, handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                cmd = command(name, await read(request), client_address(request))
                return _lines(await handler(cmd))
            except Exception as exc:
                return self._failure(name, exc)

        return handle

    def _failure(self, name: str, exc: Exception) -> Response:
        """A command's fault, a login refused unchecked, parameters that cannot be read,
        the spool unable to take it, or a bug of ours, in Clickatell's words all the same."""
        if isinstance(exc, Fault):
            return _lines(f"ERR: {exc.text}")
        if isinstance(exc, LockedOut):
            return _lines(f"ERR: {fault_text('007')}", 200, **self.logins.retry_after())
        if isinstance(exc, BadParameters):
            return _lines(f"ERR: {fault_text('101')}", 400)
        if isinstance(exc, TemporaryFailure):
            words, headers = temporarily(self.ctx, exc)
            return _lines(f"ERR: 101, {words}", 503, **headers)
        log.error("unhandled error in /http/%s", name, exc_info=exc, extra={"action": "dialect"})
        return _lines("ERR: 101, the hub failed to handle the request", 500)

    def prompt(self, request: Request, body: bytes) -> Prompt | None:
        """`sendmsg`'s common case staged at once (adapters/http/hot.py): a send by name
        and password (or API key) in the credential cache, with no fault in its fields.
        Anything else (a session, whose account is read from the spool; a login not in
        the cache; a fault) is declined, for the command's endpoint to answer."""
        try:
            cmd = command("sendmsg", parsed(request, body), client_address(request))
        except BadParameters:
            return None
        if cmd.get("session_id"):
            return None
        account = self.logins.cached(cmd.address, cmd.get("user"), cmd.get("password"))
        if account is None:
            return None
        try:
            numbers, items = self._send_items(cmd)
        except Fault:
            return None
        return staged_prompt(self.ctx, account, items,
                             lambda outcomes: _lines(send_lines(numbers, outcomes)),
                             lambda exc: self._failure("sendmsg", exc))

    async def auth(self, cmd: Command) -> str:
        account = await self.xml.account(cmd)
        return f"OK: {await self.sessions.open(account.id)}"

    async def ping(self, cmd: Command) -> str:
        if not cmd.get("session_id"):
            raise Fault("005")
        await self.xml.account(cmd)
        return "OK:"

    async def send(self, cmd: Command) -> str:
        account = await self.xml.account(cmd)
        numbers, items = self._send_items(cmd)
        return send_lines(numbers, await submit(self.ctx, account, items))

    def _send_items(self, cmd: Command) -> tuple[list[str], list[Submission | Refused]]:
        """sendmsg's numbers and a submission (or refusal) for each; Fault for a field
        that fails the whole command."""
        numbers = recipients(cmd)
        if len(numbers) > self.max_messages:
            raise Fault("101")
        return numbers, submissions(cmd, utcnow())

    async def query(self, cmd: Command) -> str:
        message = await self.xml.message(cmd)
        return f"ID: {message.id} Status: {STATUSES[message.status]}" + _held(message,
                                                                              "Description")

    async def charge(self, cmd: Command) -> str:
        # The form Clickatell's client libraries parse: lower-case `charge` and `status`.
        message = await self.xml.message(cmd)
        return (f"apiMsgId: {message.id} charge: {views.money(message.cost)} "
                f"status: {STATUSES[message.status]}" + _held(message, "description"))

    async def balance(self, cmd: Command) -> str:
        # `Credit:`, singular, is what the client libraries parse (the guide says Credits).
        account = await fresh_account(self.ctx, await self.xml.account(cmd))
        return f"Credit: {views.money(account.balance)}"

    async def delete(self, cmd: Command) -> str:
        """Stops a message not yet sent (credit refunded); answers its status now, which
        is 006 when it was stopped and what it already was when too late."""
        message = await self.xml.message(cmd)
        runner = self.ctx.runner
        spool = runner.spool
        if isinstance(spool, Cancelling):
            await runner.call(spool.cancel, [message.id], message.account_id, utcnow())
        now = await runner.call(spool.get_message, message.id)
        return f"ID: {message.id} Status: {STATUSES[(now or message).status]}"
