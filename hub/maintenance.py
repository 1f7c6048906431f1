"""Periodic upkeep on APScheduler: recover expired leases, expire messages past their
validity, dead-letter messages that kept failing past the maximum age, settle messages
whose delivery report never came (asking the carrier first where it can answer), route
inbound messages left unrouted."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from hub.clock import Clock, utcnow
from hub.errors import TemporaryFailure
from hub.inbound import InboundDesk
from hub.policies import ReceiptTimeout
from hub.ports import Carrier, MessageQueue, QueryingCarrier, ReceiptStore, ReportDeadline
from hub.spoolcall import SpoolThreads

log = logging.getLogger(__name__)
QUERY_PAGE = 500  # overdue messages asked about per query call


class UpkeepStore(MessageQueue, ReceiptStore, Protocol):
    """The spool roles upkeep uses: the queue's sweeps, and the reports still owed."""


class Maintenance:
    """The periodic upkeep job: `run_once` every `interval` seconds on APScheduler
    (one run at a time, missed runs coalesced)."""

    def __init__(
        self, runner: SpoolThreads[UpkeepStore], interval: float, max_age: float,
        clock: Clock = utcnow,
        inbound: InboundDesk | None = None,
        receipts: Mapping[str, ReceiptTimeout] | None = None,
        carriers: Mapping[str, Carrier] | None = None,
        held_report_ttl: float = 86_400.0,
    ) -> None:
        self._runner = runner
        self._inbound = inbound
        # Receipt timeouts by carrier name; a carrier not named (one since removed from
        # the configuration, say) gets the default, so nothing waits for ever.
        self._receipts = dict(receipts or {})
        self._carriers = dict(carriers or {})
        self._interval = interval
        self._max_age = timedelta(seconds=max_age)
        self._held_report_ttl = timedelta(seconds=held_report_ttl)
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
                "no_report": await self._settle_reports(now),
                "unknown_reports_dropped": await self._runner.call(
                    spool.purge_held_reports, now - self._held_report_ttl),
                # Inbound messages a crash left unrouted get their emails and webhooks.
                "routed": 0 if self._inbound is None else await self._inbound.route_pending(),
            }
        except TemporaryFailure as exc:
            log.warning("maintenance skipped: %s", exc, extra={"action": "maintenance"})
            return {}
        if any(done.values()):
            log.info("maintenance: %s", done, extra={"action": "maintenance", **done})
        return done

    async def _settle_reports(self, now: datetime) -> int:
        """Submitted messages past their carrier's receipt timeout: ask the carrier first
        if it can answer (query_sm), then fail the rest as no_delivery_report."""
        spool = self._runner.spool
        timed_out = 0
        for name in await self._runner.call(spool.awaiting_carriers):
            deadline = self._receipts.get(name, ReceiptTimeout()).deadline(name, now)
            carrier = self._carriers.get(name)
            if isinstance(carrier, QueryingCarrier):
                await self._query(carrier, deadline, now)
            timed_out += await self._runner.call(spool.time_out_reports, deadline, now)
        return timed_out

    async def _query(self, carrier: QueryingCarrier, deadline: ReportDeadline,
                     now: datetime) -> None:
        """Apply what the carrier answers for the overdue messages, a page at a time. Its
        answers are a last chance, not a delay: one that fails, or is not final, leaves
        the message to time out."""
        spool, after = self._runner.spool, ""
        while True:
            page = await self._runner.call(spool.overdue_reports, deadline, after, QUERY_PAGE)
            if not page:
                return
            try:
                answers = await carrier.query(page)
            except Exception:
                log.exception("%s could not answer a query", carrier.name,
                              extra={"action": "query"})
                return
            final = [r for r in answers if r.status.final]
            if final:
                await self._runner.call(spool.apply_reports, final, now)
            if len(page) < QUERY_PAGE:
                return
            after = page[-1].id
