"""The operators' sign-in at /admin: their own session cookie (another signing key, sent
only to /admin), CSRF on every post, a failure limit per address apart from customers',
sign out (ended on the server too); every operator page runs behind it, a customer's
session opening none."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from adapters.http.app import temporarily
from adapters.http.logins import client_address
from adapters.http.portal.forms import Form, read_form
from adapters.http.portal.session import (
    ADMIN_COOKIE,
    ADMIN_LOGIN_COOKIE,
    ADMIN_PURPOSE,
    Session,
    Sessions,
)
from adapters.http.portal.web import HEADERS, NotYours, Web
from hub.accounts import check_password, dummy_hash
from hub.errors import NotFound, TemporaryFailure
from hub.logins import FailedLogins
from hub.operators import AdminStore, Operator

log = logging.getLogger(__name__)

PATH = "/admin"
HOME = "/admin/accounts"


@dataclass(frozen=True, slots=True)
class Staff:
    """A signed-in operator, as stored now, and the session's CSRF token."""

    operator: Operator
    session: Session
    csrf: str


AdminPage = Callable[[Staff, Request, Form], Awaitable[Response]]


class AdminWeb:
    def __init__(self, web: Web, secret: bytes) -> None:
        self.web = web
        self.ctx = web.ctx
        self.sessions = Sessions(secret, web.settings.session_hours * 3600, ADMIN_PURPOSE)
        # Apart from the customers' count: neither side's failures lock the other out.
        self.failures = FailedLogins(
            web.settings.login_failures_per_ip, web.settings.login_lockout_seconds
        )

    def render(
        self, request: Request, template: str, staff: Staff | None, status: int = 200, **values: Any
    ) -> Response:
        page = self.web.env.get_template(f"admin/{template}").render(
            staff=staff,
            operator=None if staff is None else staff.operator,
            csrf="" if staff is None else staff.csrf,
            path=request.url.path,
            **values,
        )
        return HTMLResponse(page, status, headers=HEADERS)

    def page(self, handler: AdminPage) -> Callable[[Request], Awaitable[Response]]:
        """An endpoint for signed-in operators: anyone else (a customer's session too) goes
        to the operators' sign-in; a post without the session's CSRF token is refused."""

        async def endpoint(request: Request) -> Response:
            try:
                staff = await self._staff(request)
                if staff is None:
                    return RedirectResponse(f"{PATH}/login", 303, headers=HEADERS)
                form = Form()
                if request.method == "POST":
                    form = await read_form(request)
                    if not self.sessions.csrf_ok(staff.session, form.get("csrf")):
                        return self.render(
                            request,
                            "error.html",
                            staff,
                            403,
                            title="Form expired",
                            message="The form was out of date. Go back, reload and try again.",
                        )
                return await handler(staff, request, form)
            except (NotYours, NotFound):
                return self.render(
                    request,
                    "error.html",
                    None,
                    404,
                    title="Not found",
                    message="There is no such page.",
                )
            except TemporaryFailure as exc:
                words, headers = temporarily(self.ctx, exc)
                response = self.render(
                    request, "error.html", None, 503, title="Try again shortly", message=words
                )
                response.headers.update(headers)
                return response

        return endpoint

    async def _staff(self, request: Request) -> Staff | None:
        session = self.sessions.read(request.cookies.get(ADMIN_COOKIE))
        if session is None:
            return None
        if await self.web.signed_out(self.sessions, session):
            return None
        # Read afresh: a removed operator's session ends with the next request, and one
        # made before their password changed too.
        operator = await self.ctx.runner.call(
            self.ctx.runner.spool.get_operator, session.account_id
        )
        if operator is None or not session.bound_to(operator.stamp):
            return None
        return Staff(operator, session, self.sessions.csrf(session))

    async def login_form(self, request: Request) -> Response:
        if await self._staff(request) is not None:
            return RedirectResponse(HOME, 303, headers=HEADERS)
        return self._login_page(request, 200, "")

    def _login_page(self, request: Request, status: int, error: str) -> Response:
        token = secrets.token_urlsafe(16)  # double-submitted: cookie and field
        response = self.render(request, "login.html", None, status, error=error, login_token=token)
        self._cookie(request, response, ADMIN_LOGIN_COOKIE, token, 3600)
        return response

    async def login(self, request: Request) -> Response:
        form = await read_form(request)
        expected = request.cookies.get(ADMIN_LOGIN_COOKIE, "")
        if not expected or not secrets.compare_digest(expected, form.get("csrf")):
            return self._login_page(request, 403, "The form was out of date; try again.")
        address = client_address(request)
        if self.failures.locked_out(address):
            return self._login_page(
                request,
                429,
                "Too many failed sign-ins from your address. Wait a few minutes and try again.",
            )
        operator = await self.ctx.runner.call(
            check_operator,
            self.ctx.runner.spool,
            form.get("operator").strip(),
            form.get("password"),
        )
        if operator is None:
            self.failures.record(address)
            log.warning(
                "operator sign-in refused from %s", address, extra={"action": "admin-login-failed"}
            )
            return self._login_page(request, 401, "Wrong operator name or password.")
        log.info(
            "operator %s signed in from %s", operator.name, address, extra={"action": "admin-login"}
        )
        response = RedirectResponse(HOME, 303, headers=HEADERS)
        self._cookie(
            request,
            response,
            ADMIN_COOKIE,
            self.sessions.issue(operator.id, operator.stamp),
            int(self.sessions.max_age),
        )
        response.delete_cookie(ADMIN_LOGIN_COOKIE, path=PATH)
        return response

    async def logout(self, staff: Staff, request: Request, form: Form) -> Response:
        await self.web.sign_out(self.sessions, staff.session)
        response = RedirectResponse(f"{PATH}/login", 303, headers=HEADERS)
        response.delete_cookie(ADMIN_COOKIE, path=PATH, httponly=True, samesite="strict")
        return response

    def _cookie(
        self, request: Request, response: Response, name: str, value: str, max_age: int
    ) -> None:
        # Sent only to /admin, and never on a request started by another site.
        secure = self.web.settings.secure_cookies or request.url.scheme == "https"
        response.set_cookie(
            name, value, max_age=max_age, path=PATH, httponly=True, secure=secure, samesite="strict"
        )


def check_operator(store: AdminStore, name: str, password: str) -> Operator | None:
    """The operator if the password is theirs. An unknown name costs the same time as a
    wrong password, so names cannot be probed by timing. Blocking (argon2)."""
    found = store.operator_login(name) if name else None
    if found is None:
        check_password(dummy_hash(), password)
        return None
    operator, stored = found
    return operator if check_password(stored, password) else None

