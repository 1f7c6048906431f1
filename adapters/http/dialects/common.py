"""What every HTTP dialect does alike: submissions handed to intake (source `http`), the
account read fresh (logins: adapters/http/logins.py)."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.http.app import HttpContext
from hub.model import Account, Outcome, Refused, Source, Submission


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
