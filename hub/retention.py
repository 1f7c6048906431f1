"""POPIA retention: message texts (and replies, mail subjects, webhook bodies with reply
text) older than `[privacy] retention_days` are purged by upkeep, a bounded batch per
transaction, and each run that purged anything is counted in the log and the privacy log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from hub.clock import Clock, utcnow
from hub.privacy import PURGE_KINDS, PrivacyStore
from hub.spoolcall import SpoolThreads

log = logging.getLogger(__name__)
ACTOR = "maintenance"
# Batches of each kind per run (a million rows at the default batch); the next run goes on.
MAX_BATCHES_PER_RUN = 500


class Retention:
    """`run` is called at every upkeep; it purges at most every `interval` seconds (by the
    loop's monotonic clock), batch after batch until nothing old is left, each batch its
    own short transaction so intake's commits get the write lock between them."""

    def __init__(self, runner: SpoolThreads[PrivacyStore], retention_days: float,
                 interval: float = 3600.0, batch: int = 2000, clock: Clock = utcnow,
                 monotonic: Callable[[], float] | None = None) -> None:
        self._runner = runner
        self._keep = timedelta(days=retention_days)
        self._interval = interval
        self._batch = batch
        self._clock = clock
        self._monotonic = monotonic
        self._next: float | None = None  # the first upkeep purges at once

    async def run(self) -> int:
        """Purge if due; the number of texts purged (0 when not due)."""
        now_mono = (self._monotonic or asyncio.get_running_loop().time)()
        if self._next is not None and now_mono < self._next:
            return 0
        self._next = now_mono + self._interval
        return await self.purge()

    async def purge(self) -> int:
        """Every text older than the retention, a batch per transaction, each kind
        walked once in id order; recorded once, if anything was purged."""
        spool, now = self._runner.spool, self._clock()
        before = now - self._keep
        totals = dict.fromkeys(PURGE_KINDS, 0)
        after = dict.fromkeys(PURGE_KINDS, "")
        for _ in range(MAX_BATCHES_PER_RUN):
            if not after:
                break
            for kind, start in list(after.items()):
                count, going_on = await self._runner.call(spool.purge_texts, kind, before,
                                                          start, self._batch)
                totals[kind] += count
                if going_on is None:
                    del after[kind]
                else:
                    after[kind] = going_on
        totals.update(await self._runner.call(spool.purge_leftovers, before))
        purged = sum(totals.values())
        if purged:
            await self._runner.call(spool.record_privacy, now, "purge", None, ACTOR, totals)
            log.info("retention: purged %d texts older than %s: %s", purged,
                     before.isoformat(timespec="seconds"), totals,
                     extra={"action": "retention", **totals})
        return purged
