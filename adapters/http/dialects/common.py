"""What every HTTP dialect does alike: submissions handed to intake (source `http`), the
account read fresh (logins: adapters/http/logins.py)."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.http.app import HttpContext
from adapters.xml.common import submit_items
from hub.model import Account, Outcome, Refused, Source, Submission


async def submit(ctx: HttpContext, account: Account,
                 parsed: Sequence[Submission | Refused]) -> list[Outcome]:
    """Intake for an HTTP dialect request (the XML forms' own helper, source HTTP)."""
    return await submit_items(ctx, account, parsed, Source.HTTP)


async def fresh_account(ctx: HttpContext, account: Account) -> Account:
    """The account as the spool has it now (a login may come from the credential cache,
    whose balance is stale)."""
    runner = ctx.runner
    return await runner.call(runner.spool.get_account_by_id, account.id)
