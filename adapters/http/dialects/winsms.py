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

from adapters.http.app import HttpContext, Prompt, PromptRoute, temporarily
from adapters.http.dialects.common import fresh_account, staged_prompt, submit
from adapters.http.dialects.params import BadParameters, Params, parsed, read
from adapters.http.dialects.paths import WINSMS
from adapters.http.logins import LockedOut, Logins, client_address
from adapters.xml.winsms import MAX_NUMBERS, scheduled
from hub.errors import AuthenticationError, Rejected, TemporaryFailure
from hub.model import Account, Outcome, Refused, Submission
from hub.numbers import with_plus

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


def batch_items(params: Params) -> tuple[list[str], list[Submission | Refused]] | None:
    """batchmessage.asp's numbers as given and a submission (or the refusal of its
    `scheduled` time) for each; None when the numbers are missing or too many (INVALID)."""
    given = numbers(params.text("numbers", fold=True) or "")
    if not given or len(given) > MAX_NUMBERS:
        return None
    text = params.text("message", fold=True) or ""
    try:
        when = params.text("scheduled", "scheduleddatetime", fold=True)
        send_at = scheduled(when.strip() if when else None)
    except Rejected as exc:
        return given, [Refused(exc.code, exc.reason)] * len(given)
    return given, [Submission(with_plus(n), text, send_at=send_at) for n in given]


def _credentials(params: Params) -> tuple[str | None, str | None]:
    # Some clients send an API key as `APIKey` rather than in `password`.
    return params.text("user", fold=True), params.text("password", "apikey", fold=True)


def routes(ctx: HttpContext, logins: Logins) -> list[BaseRoute]:
    api = WinSmsHttp(ctx, logins)
    pages: dict[str, _Page] = {"auth.asp": api.auth, "credits.asp": api.credits,
                               "batchmessage.asp": api.batch}
    out: list[BaseRoute] = []
    for path in WINSMS:
        page = path.rsplit("/", 1)[1]
        endpoint = api.endpoint(path, pages[page])
        out.append(PromptRoute(path, endpoint, prompt=api.prompt, methods=["GET", "POST"])
                   if page == "batchmessage.asp" else
                   Route(path, endpoint, methods=["GET", "POST"]))
    return out


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
            except Exception as exc:
                return self._failure(path, exc)

        return handle

    def _failure(self, path: str, exc: Exception) -> Response:
        """What stops a request after its parameters are read: the spool unable to take
        it, or a bug of ours, answered in WinSMS's plain words all the same."""
        if isinstance(exc, TemporaryFailure):
            words, headers = temporarily(self.ctx, exc)
            return _plain(f"BUSY: {words}", 503, **headers)
        log.error("unhandled error in %s", path, exc_info=exc, extra={"action": "dialect"})
        return _plain("ERROR", 500)

    def prompt(self, request: Request, body: bytes) -> Prompt | None:
        """`batch`'s common case staged at once (adapters/http/hot.py): a send whose
        login is in the cache, with its numbers there and not too many. Anything else
        is declined, for `batch` to answer."""
        try:
            params = parsed(request, body)
        except BadParameters:
            return None
        account = self.logins.cached(client_address(request), *_credentials(params))
        if account is None:
            return None
        found = batch_items(params)
        if found is None:
            return None
        given, items = found
        return staged_prompt(self.ctx, account, items,
                             lambda outcomes: _plain(sent_answer(given, outcomes)),
                             lambda exc: self._failure(WINSMS[2], exc))

    async def _login(self, request: Request, params: Params) -> Account:
        return await self.logins.check(client_address(request), *_credentials(params))

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
        found = batch_items(params)
        if found is None:
            return _plain("INVALID")
        given, items = found
        return _plain(sent_answer(given, await submit(self.ctx, account, items)))
