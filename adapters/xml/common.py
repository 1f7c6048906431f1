"""What every XML dialect (native, WinSMS, Clickatell, Kannel) asks of the hub: intake
of parsed submissions, messages by id or by client reference, and inbound replies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ParamSpec, TypeVar

from adapters.http.app import HttpContext
from hub.intake import Staged
from hub.model import (
    Account,
    Inbound,
    InboundKind,
    Message,
    NewMessage,
    Outcome,
    Refused,
    Source,
    Submission,
)
from hub.ports import Committed, InboundStore, MessageStore
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
    staged = stage_items(ctx, account, parsed, source)
    return staged.finish(await ctx.intake.commit_soon(staged.ready))


def stage_items(ctx: HttpContext, account: Account, parsed: Sequence[Submission | Refused],
                source: Source = Source.XML) -> StagedItems:
    """`submit_items` up to the commit, for a caller that waits without a task
    (adapters/http/hot.py): commit `.ready` (Intake.commit_soon), then `.finish`."""
    return StagedItems(ctx, parsed, ctx.intake.stage(
        account, source, [p for p in parsed if isinstance(p, Submission)]))


@dataclass(slots=True)
class StagedItems:
    """A dialect request's submissions staged by intake, with the refusals found while
    reading it in their places."""

    ctx: HttpContext
    parsed: Sequence[Submission | Refused]
    staged: Staged

    @property
    def ready(self) -> list[NewMessage]:
        return self.staged.ready

    def finish(self, done: Sequence[Committed]) -> list[Outcome]:
        """Every item's outcome, counted in the metrics, once `ready` is committed."""
        found = iter(self.staged.finish(done))
        outcomes = [p if isinstance(p, Refused) else next(found) for p in self.parsed]
        metrics, source = self.ctx.metrics, self.staged.source.value
        for outcome in outcomes:
            if isinstance(outcome, Refused):
                metrics.refused[outcome.code] += 1
            elif not outcome.duplicate:
                metrics.accepted[source] += 1
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
