"""What every XML dialect (native, WinSMS, Clickatell, Kannel) asks of the hub: intake
of parsed submissions, messages by id or by client reference, and inbound replies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import ParamSpec, TypeVar

from adapters.http.app import HttpContext
from hub.model import (
    Account,
    Inbound,
    InboundKind,
    Message,
    Outcome,
    Refused,
    Source,
    Submission,
)
from hub.ports import InboundStore, MessageStore
from hub.spoolcall import SpoolThreads

P = ParamSpec("P")
T = TypeVar("T")

# Below this many bytes (or items x 100), parsing or building a document costs less than
# the hop to a worker thread, which dominated single-message requests.
INLINE_LIMIT = 32_768


async def off_loop(size: int, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """CPU-bound document work: inline when small, else on a worker thread so a large
    document never stalls the event loop (parsers and schemas are per thread)."""
    if size <= INLINE_LIMIT:
        return fn(*args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)


async def submit_items(ctx: HttpContext, account: Account,
                       parsed: Sequence[Submission | Refused],
                       source: Source = Source.XML) -> list[Outcome]:
    """Intake for the valid submissions; refusals found while reading keep their place.
    Every dialect submits through this, its XML and its HTTP form alike (`source`)."""
    valid = [p for p in parsed if isinstance(p, Submission)]
    done = iter(await ctx.intake.submit(account, source, valid) if valid else [])
    outcomes = [p if isinstance(p, Refused) else next(done) for p in parsed]
    for outcome in outcomes:
        if isinstance(outcome, Refused):
            ctx.metrics.refused[outcome.code] += 1
        elif not outcome.duplicate:
            ctx.metrics.accepted[source.value] += 1
    return outcomes


async def fetch_messages(runner: SpoolThreads[MessageStore],
                         ids: Sequence[str]) -> dict[str, Message]:
    """Many messages by id in one worker-thread hop (not one hop per id)."""
    def fetch() -> dict[str, Message]:
        found = (runner.spool.get_message(i) for i in dict.fromkeys(ids))
        return {m.id: m for m in found if m is not None}

    return await runner.call(fetch) if ids else {}


async def fetch_owned(runner: SpoolThreads[MessageStore], account: Account, ids: Sequence[str],
                      client_refs: Sequence[str] = ()) -> tuple[dict[str, Message],
                                                                dict[str, Message]]:
    """The account's messages by id and by client reference; another account's message
    is absent, exactly like an unknown one, so ids cannot be probed across accounts."""
    by_id = await fetch_messages(runner, ids)
    owned = {i: m for i, m in by_id.items() if m.account_id == account.id}
    by_ref = (await runner.call(runner.spool.find_by_client_ref, account.id, client_refs)
              if client_refs else {})
    return owned, by_ref


async def list_replies(runner: SpoolThreads[InboundStore], account: Account, since: datetime | None,
                       limit: int, *, opt_outs: bool = True) -> list[Inbound]:
    """The account's inbound messages received at or after `since`, oldest first."""
    found = await runner.call(runner.spool.list_inbound, account.id, since, limit)
    return [m for m in found if opt_outs or m.kind is not InboundKind.OPT_OUT]
