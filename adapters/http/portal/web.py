"""What every portal page shares: the signed-in customer (from the session cookie, the
account read afresh, its password still the one the session was opened with), CSRF
checks on every post, sign-in with its failure limit, sign out (the session then ended
on the server too), and rendering a template with the headers a page of account data
needs."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from adapters.http.app import HttpContext, temporarily
from adapters.http.logins import client_address
from adapters.http.portal.forms import Form, read_form
from adapters.http.portal.session import COOKIE, LOGIN_COOKIE, Session, Sessions
from hub.accounts import Credentials
from hub.clock import utcnow
from hub.errors import AuthenticationError, NotFound, TemporaryFailure
from hub.logins import FailedLogins
from hub.model import Account
from hub.sections import PortalSection

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
# Pages hold account data: never cached, never framed, scripts and styles only our own.
HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
           "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; "
                                      "form-action 'self'; base-uri 'none'"}


@dataclass(frozen=True, slots=True)
class Visitor:
    """A signed-in customer: the account as it is now, and the session's CSRF token."""

    account: Account
    session: Session
    csrf: str


Page = Callable[[Visitor, Request, Form], Awaitable[Response]]


class NotYours(Exception):
    """Absent, or another account's: both answered 404 alike."""


class Web:
    def __init__(self, ctx: HttpContext, settings: PortalSection, secret: bytes) -> None:
        self.ctx = ctx
        self.settings = settings
        self.credentials: Credentials = ctx.credentials
        self.sessions = Sessions(secret, settings.session_hours * 3600)
        self.failures = FailedLogins(settings.login_failures_per_ip,
                                     settings.login_lockout_seconds)
        self.env = Environment(loader=FileSystemLoader(TEMPLATES),
                               autoescape=select_autoescape(default=True))
        zone = ZoneInfo(ctx.timezone)
        self.env.filters["local"] = lambda when: _local(when, zone)
        self.env.filters["local_seconds"] = lambda when: _local(when, zone, "%H:%M:%S")

    async def signed_out(self, sessions: Sessions, session: Session) -> bool:
        """Whether the session was signed out (a copy of its cookie opens nothing): a
        customer's, or with the operators' `sessions` an operator's."""
        return await self.ctx.runner.call(self.ctx.runner.spool.session_ended,
                                          sessions.ended_key(session))

    async def sign_out(self, sessions: Sessions, session: Session) -> None:
        """End the session on the server, until it would have expired anyway."""
        await self.ctx.runner.call(self.ctx.runner.spool.end_session,
                                   sessions.ended_key(session), sessions.expires(session),
                                   utcnow())

    def render(self, request: Request, template: str, visitor: Visitor | None,
               status: int = 200, **values: Any) -> Response:
        page = self.env.get_template(template).render(
            visitor=visitor, account=None if visitor is None else visitor.account,
            csrf="" if visitor is None else visitor.csrf, path=request.url.path, **values)
        return HTMLResponse(page, status, headers=HEADERS)

    def page(self, handler: Page) -> Callable[[Request], Awaitable[Response]]:
        """An endpoint for signed-in customers: others go to the sign-in page; a post
        without the session's CSRF token is refused (403) before anything is done."""

        async def endpoint(request: Request) -> Response:
            try:
                visitor = await self._visitor(request)
                if visitor is None:
                    return RedirectResponse("/login", 303, headers=HEADERS)
                form = Form()
                if request.method == "POST":
                    form = await read_form(request)
                    if not self.sessions.csrf_ok(visitor.session, form.get("csrf")):
                        return self.render(request, "error.html", visitor, 403,
                                           title="Form expired", message="The form was "
                                           "out of date. Go back, reload and try again.")
                return await handler(visitor, request, form)
            except (NotYours, NotFound):
                return self.render(request, "error.html", None, 404, title="Not found",
                                   message="There is no such page in your account.")
            except TemporaryFailure as exc:
                words, headers = temporarily(self.ctx, exc)
                return HTMLResponse(self.env.get_template("error.html").render(
                    visitor=None, title="Try again shortly", message=words), 503,
                    headers={**HEADERS, **headers})

        return endpoint

    async def _visitor(self, request: Request) -> Visitor | None:
        session = self.sessions.read(request.cookies.get(COOKIE))
        if session is None:
            return None
        spool = self.ctx.runner.spool
        if await self.signed_out(self.sessions, session):
            return None
        try:
            account, stamp = await self.ctx.runner.call(spool.session_account,
                                                        session.account_id)
        except NotFound:
            return None
        if not account.enabled or account.deleted_at is not None:
            return None
        if not session.bound_to(stamp):  # opened with a password since changed
            return None
        return Visitor(account, session, self.sessions.csrf(session))

    async def login_form(self, request: Request) -> Response:
        if await self._visitor(request) is not None:
            return RedirectResponse("/messages", 303, headers=HEADERS)
        return self._login_page(request, 200, "")

    def _login_page(self, request: Request, status: int, error: str) -> Response:
        # Before a session exists the form's token is double-submitted: cookie and field.
        token = secrets.token_urlsafe(16)
        response = self.render(request, "login.html", None, status, error=error,
                               login_token=token)
        self._cookie(request, response, LOGIN_COOKIE, token, 3600)
        return response

    async def login(self, request: Request) -> Response:
        form = await read_form(request)
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not secrets.compare_digest(expected, form.get("csrf")):
            return self._login_page(request, 403, "The form was out of date; try again.")
        address = client_address(request)
        if self.failures.locked_out(address):
            return self._login_page(request, 429, "Too many failed sign-ins from your "
                                    "address. Wait a few minutes and try again.")
        try:
            account, stamp = await self.credentials.sign_in(form.get("account").strip(),
                                                            form.get("password"))
        except AuthenticationError:
            self.failures.record(address)
            return self._login_page(request, 401, "Wrong account name or password.")
        if not account.enabled or account.deleted_at is not None:
            return self._login_page(request, 401, "Wrong account name or password.")
        log.info("portal sign-in for %s from %s", account.name, address,
                 extra={"action": "portal-login"})
        response = RedirectResponse("/messages", 303, headers=HEADERS)
        self._cookie(request, response, COOKIE, self.sessions.issue(account.id, stamp),
                     int(self.sessions.max_age))
        response.delete_cookie(LOGIN_COOKIE, path="/")
        return response

    async def logout(self, visitor: Visitor, request: Request, form: Form) -> Response:
        await self.sign_out(self.sessions, visitor.session)
        response = RedirectResponse("/login", 303, headers=HEADERS)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
        return response

    def _cookie(self, request: Request, response: Response, name: str, value: str,
                max_age: int) -> None:
        secure = self.settings.secure_cookies or request.url.scheme == "https"
        response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                            secure=secure, samesite="lax")


def _local(when: datetime | str | None, zone: ZoneInfo, form: str = "%H:%M") -> str:
    """A time as people here read it: the hub's zone, to the minute (or `form`)."""
    if when is None or when == "":
        return ""
    moment = datetime.fromisoformat(when) if isinstance(when, str) else when
    return moment.astimezone(zone).strftime(f"%Y-%m-%d {form}")
