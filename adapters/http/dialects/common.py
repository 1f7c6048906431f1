"""What every HTTP dialect does alike: submissions handed to intake (source `http`), the
account read fresh (logins: adapters/http/logins.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.responses import Response

from adapters.http.app import HttpContext, Prompt
from adapters.xml.common import stage_items, submit_items
from hub.model import Account, Outcome, Refused, Source, Submission
from hub.ports import Committed


async def submit(ctx: HttpContext, account: Account,
                 parsed: Sequence[Submission | Refused]) -> list[Outcome]:
    """Intake for an HTTP dialect request (the XML forms' own helper, source HTTP)."""
    return await submit_items(ctx, account, parsed, Source.HTTP)


def staged_prompt(ctx: HttpContext, account: Account,
                  parsed: Sequence[Submission | Refused],
                  answer: Callable[[list[Outcome]], Response],
                  failure: Callable[[Exception], Response]) -> Prompt:
    """`submit` for a dialect's Prompter (adapters/http/hot.py): the items staged now,
    answered by `answer` with their outcomes once committed, or by `failure` with what
    stopped the commit."""
    staged = stage_items(ctx, account, parsed, Source.HTTP)

    def answer_with(done: Sequence[Committed] | Exception) -> Response:
        if isinstance(done, Exception):
            return failure(done)
        return answer(staged.finish(done))

    return Prompt(staged.ready, answer_with)


async def fresh_account(ctx: HttpContext, account: Account) -> Account:
    """The account as the spool has it now (a login may come from the credential cache,
    whose balance is stale)."""
    runner = ctx.runner
    return await runner.call(runner.spool.get_account_by_id, account.id)
