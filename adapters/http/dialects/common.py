"""What every HTTP dialect does alike: logins checked with failures limited per client
address, submissions handed to intake (source `http`), the account read fresh."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.requests import Request

from adapters.http.app import HttpContext
from hub.accounts import KEY_PREFIX
from hub.errors import AuthenticationError
from hub.logins import FailedLogins
from hub.model import Account, Outcome, Refused, Source, Submission
from hub.sections import DialectsSection

log = logging.getLogger(__name__)


class LockedOut(AuthenticationError):
    """Too many failed logins from this address lately: not even checked."""


class Logins:
    """Checks a dialect's user and password (or an smshub API key where the password
    goes, as some clients do), counting failures per client address."""

    def __init__(self, ctx: HttpContext, settings: DialectsSection) -> None:
        self.ctx = ctx
        self.lockout = settings.login_lockout_seconds
        self._failures = FailedLogins(settings.login_failures_per_ip, self.lockout)

    async def check(self, request: Request, user: str | None, password: str | None) -> Account:
        address = request.client.host if request.client else ""
        if self._failures.locked_out(address):
            raise LockedOut(f"too many failed logins from {address}")
        try:
            if password and password.startswith(f"{KEY_PREFIX}_"):
                return await self.ctx.credentials.by_api_key(password)
            if not user or password is None:
                raise AuthenticationError("no user and password")
            return await self.ctx.credentials.by_password(user, password)
        except AuthenticationError:
            self._failures.record(address)
            if self._failures.locked_out(address):
                log.warning("failed logins on %s from %s: refused for %d s", request.url.path,
                            address, self.lockout, extra={"action": "dialect-lockout"})
            raise

    def retry_after(self) -> dict[str, str]:
        return {"Retry-After": str(int(self.lockout))}


async def submit(ctx: HttpContext, account: Account,
                 parsed: Sequence[Submission | Refused]) -> list[Outcome]:
    """Intake for the valid submissions; refusals found while reading keep their place."""
    valid = [p for p in parsed if isinstance(p, Submission)]
    done = iter(await ctx.intake.submit(account, Source.HTTP, valid) if valid else [])
    outcomes = [p if isinstance(p, Refused) else next(done) for p in parsed]
    for outcome in outcomes:
        if isinstance(outcome, Refused):
            ctx.metrics.refused[outcome.code] += 1
        elif not outcome.duplicate:
            ctx.metrics.accepted[Source.HTTP.value] += 1
    return outcomes


async def fresh_account(ctx: HttpContext, account: Account) -> Account:
    """The account as the spool has it now (a login may come from the credential cache,
    whose balance is stale)."""
    runner = ctx.runner
    return await runner.call(runner.spool.get_account_by_id, account.id)
