"""Periodic upkeep on APScheduler: recover expired leases, expire messages past their
validity, dead-letter messages that kept failing past the maximum age, route inbound
messages left unrouted."""

from __future__ import annotations

import logging
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from hub.clock import Clock, utcnow
from hub.errors import TemporaryFailure
from hub.inbound import InboundDesk
from hub.ports import MessageQueue
from hub.spoolcall import SpoolRunner

log = logging.getLogger(__name__)


class Maintenance:
    """The periodic upkeep job: `run_once` every `interval` seconds on APScheduler
    (one run at a time, missed runs coalesced)."""

    def __init__(
        self, runner: SpoolRunner[MessageQueue], interval: float, max_age: float,
        clock: Clock = utcnow,
        inbound: InboundDesk | None = None,
    ) -> None:
        self._runner = runner
        self._inbound = inbound
        self._interval = interval
        self._max_age = timedelta(seconds=max_age)
        self._clock = clock
        self._scheduler = AsyncIOScheduler(timezone="UTC")

    def start(self) -> None:
        self._scheduler.add_job(
            self.run_once, "interval", seconds=self._interval, id="spool-upkeep",
            max_instances=1, coalesce=True,
        )
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    async def run_once(self) -> dict[str, int]:
        spool, now = self._runner.spool, self._clock()
        try:
            done = {
                "recovered": await self._runner.call(spool.recover_expired_leases, now),
                "expired": await self._runner.call(spool.expire_due, now),
                "dead_lettered": await self._runner.call(
                    spool.dead_letter, now - self._max_age, now
                ),
                # Inbound messages a crash left unrouted get their emails and webhooks.
                "routed": 0 if self._inbound is None else await self._inbound.route_pending(),
            }
        except TemporaryFailure as exc:
            log.warning("maintenance skipped: %s", exc, extra={"action": "maintenance"})
            return {}
        if any(done.values()):
            log.info("maintenance: %s", done, extra={"action": "maintenance", **done})
        return done
