"""Periodic upkeep on the event loop's monotonic timer: recover expired leases, expire
messages past their validity, dead-letter messages that kept failing past the maximum
age, settle messages whose delivery report never came (asking the carrier first where it
can answer), route inbound messages left unrouted, drop idempotency keys past their window,
purge message texts past their retention (hub/retention.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta
from typing import Protocol

from hub.clock import Clock, utcnow
from hub.errors import TemporaryFailure
from hub.faultlog import FaultLog
from hub.inbound import InboundDesk
from hub.policies import ReceiptTimeout
from hub.ports import (
    Carrier,
    IdempotencyStore,
    MessageQueue,
    QueryingCarrier,
    ReceiptStore,
    ReportDeadline,
)
from hub.retention import Retention
from hub.spoolcall import SpoolThreads

log = logging.getLogger(__name__)
QUERY_PAGE = 500  # overdue messages asked about per query call


class UpkeepStore(MessageQueue, ReceiptStore, IdempotencyStore, Protocol):
    """The spool roles upkeep uses: the queue's sweeps, the reports still owed, and the
    idempotency keys to purge."""


class Maintenance:
    """The periodic upkeep job: `run_once` every `interval` seconds, one run at a time.
    Timed by the loop's monotonic clock, not the wall clock APScheduler schedules by:
    after a wall clock stepped back an hour, its next run was an hour away, and with it
    lease recovery, expiry and receipt timeouts."""

    def __init__(
        self, runner: SpoolThreads[UpkeepStore], interval: float, max_age: float,
        clock: Clock = utcnow,
        inbound: InboundDesk | None = None,
        receipts: Mapping[str, ReceiptTimeout] | None = None,
        carriers: Mapping[str, Carrier] | None = None,
        held_report_ttl: float = 86_400.0,
        held: Callable[[], Collection[str]] = frozenset,
        retention: Retention | None = None,
    ) -> None:
        self._runner = runner
        self._retention = retention
        # Lease tokens this node's dispatcher is working under: never taken back here,
        # however old a stepped wall clock makes them look.
        self._held = held
        self._inbound = inbound
        # Receipt timeouts by carrier name; a carrier not named (one since removed from
        # the configuration, say) gets the default, so nothing waits for ever.
        self._receipts = dict(receipts or {})
        self._carriers = dict(carriers or {})
        self._interval = interval
        self._max_age = timedelta(seconds=max_age)
        self._held_report_ttl = timedelta(seconds=held_report_ttl)
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._faults = FaultLog(log, "maintenance skipped", "maintenance")

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._every_interval())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _every_interval(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.run_once()
            except Exception:  # a bug in one run must not end upkeep for good
                log.exception("maintenance run failed", extra={"action": "maintenance"})

    async def run_once(self) -> dict[str, int]:
        spool, now = self._runner.spool, self._clock()
        try:
            done = {
                "recovered": await self._runner.call(spool.recover_expired_leases, now,
                                                     self._held()),
                "expired": await self._runner.call(spool.expire_due, now),
                "dead_lettered": await self._runner.call(
                    spool.dead_letter, now - self._max_age, now
                ),
                "no_report": await self._settle_reports(now),
                "unknown_reports_dropped": await self._runner.call(
                    spool.purge_held_reports, now - self._held_report_ttl),
                "idempotency_keys_purged": await self._runner.call(spool.purge_keys, now),
                # Inbound messages a crash left unrouted get their emails and webhooks.
                "routed": 0 if self._inbound is None else await self._inbound.route_pending(),
                "texts_purged": 0 if self._retention is None else await self._retention.run(),
            }
        except TemporaryFailure as exc:  # said once while it lasts, not at every run
            self._faults.failed(str(exc))
            return {}
        self._faults.cleared()
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
