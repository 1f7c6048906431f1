"""WinSMS's HTTP API (`/api/auth.asp`, `/api/credits.asp`, `/api/batchmessage.asp`, GET
or POST), read as real clients write it (parameter names in any case, `;`-separated
numbers, local or international) and answered in WinSMS's plain-text words."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_UP

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.http.app import HttpContext, temporarily
from adapters.http.dialects.common import fresh_account, submit
from adapters.http.dialects.params import BadParameters, Params, read
from adapters.http.dialects.paths import WINSMS
from adapters.http.logins import LockedOut, Logins, client_address
from adapters.xml.winsms import MAX_NUMBERS, scheduled
from hub.errors import AuthenticationError, Rejected, TemporaryFailure
from hub.model import Account, Outcome, Refused, Submission

log = logging.getLogger(__name__)

# Our refusal codes as the tokens WinSMS clients check for; anything else is INVALID.
_TOKENS = {"invalid_number": "BADDEST", "insufficient_credit": "NOCREDITS",
           "account_disabled": "ACCOUNTLOCKED"}

_Page = Callable[[Request, Params], Awaitable[Response]]


def _plain(text: str, status: int = 200, **headers: str) -> Response:
    return PlainTextResponse(text, status, headers=headers)


def numbers(value: str) -> list[str]:
    """`27825550101;0835550505;`: split on `;` (a trailing one, blanks and commas some
    clients put between them, too)."""
    return [n.strip() for n in value.replace(",", ";").split(";") if n.strip()]


def credits(account: Account) -> int:
    """WinSMS credits are SMS: the single-part messages the balance pays for; an account
    that sends free has its balance, rounded."""
    if account.price_per_segment > 0:
        return int((account.balance / account.price_per_segment)
                   .to_integral_value(ROUND_FLOOR))
    return int(account.balance.to_integral_value(ROUND_HALF_UP))


def sent_answer(given: Sequence[str], outcomes: Sequence[Outcome]) -> str:
    """`<number>=<id>;` per number as the client wrote it, or `<number>=<TOKEN>;`."""
    return "".join(
        f"{number}={_TOKENS.get(o.code, 'INVALID') if isinstance(o, Refused) else o.message_id};"
        for number, o in zip(given, outcomes, strict=True))


def routes(ctx: HttpContext, logins: Logins) -> list[BaseRoute]:
    api = WinSmsHttp(ctx, logins)
    pages: dict[str, _Page] = {"auth.asp": api.auth, "credits.asp": api.credits,
                               "batchmessage.asp": api.batch}
    return [Route(path, api.endpoint(path, pages[path.rsplit("/", 1)[1]]),
                  methods=["GET", "POST"]) for path in WINSMS]


class WinSmsHttp:
    def __init__(self, ctx: HttpContext, logins: Logins) -> None:
        self.ctx = ctx
        self.logins = logins

    def endpoint(self, path: str, page: _Page) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                return await page(request, await read(request))
            except BadParameters:
                return _plain("INVALID", 400)
            except TemporaryFailure as exc:
                words, headers = temporarily(self.ctx, exc)
                return _plain(f"BUSY: {words}", 503, **headers)
            except Exception:  # a bug of ours, answered in WinSMS's plain words all the same
                log.exception("unhandled error in %s", path, extra={"action": "dialect"})
                return _plain("ERROR", 500)

        return handle

    async def _login(self, request: Request, params: Params) -> Account:
        # Some clients send an API key as `APIKey` rather than in `password`.
        password = params.text("password", "apikey", fold=True)
        return await self.logins.check(client_address(request),
                                       params.text("user", fold=True), password)

    async def auth(self, request: Request, params: Params) -> Response:
        try:
            account = await self._login(request, params)
        except LockedOut:
            return _plain("Login=ACCOUNTLOCKED", 200, **self.logins.retry_after())
        except AuthenticationError:
            return _plain("Login=FAIL")
        return _plain("Login=OK" if account.enabled else "Login=ACCOUNTLOCKED")

    async def credits(self, request: Request, params: Params) -> Response:
        try:
            account = await self._login(request, params)
        except LockedOut:
            return _plain("Credits=FAIL", 200, **self.logins.retry_after())
        except AuthenticationError:
            return _plain("Credits=FAIL")
        return _plain(f"Credits={credits(await fresh_account(self.ctx, account))}")

    async def batch(self, request: Request, params: Params) -> Response:
        try:
            account = await self._login(request, params)
        except LockedOut:
            return _plain("ACCOUNTLOCKED", 200, **self.logins.retry_after())
        except AuthenticationError:
            return _plain("FAIL")
        given = numbers(params.text("numbers", fold=True) or "")
        if not given or len(given) > MAX_NUMBERS:
            return _plain("INVALID")
        text = params.text("message", fold=True) or ""
        try:
            when = params.text("scheduled", "scheduleddatetime", fold=True)
            send_at = scheduled(when.strip() if when else None)
            parsed: list[Submission | Refused] = [Submission(n, text, send_at=send_at)
                                                  for n in given]
        except Rejected as exc:
            parsed = [Refused(exc.code, exc.reason)] * len(given)
        return _plain(sent_answer(given, await submit(self.ctx, account, parsed)))
