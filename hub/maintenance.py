"""Periodic upkeep on the event loop's monotonic timer: recover expired leases, expire
messages past their validity, dead-letter messages that kept failing past the maximum
age, settle messages whose delivery report never came (asking the carrier first where it
can answer), route inbound messages left unrouted, drop idempotency keys past their window,
purge message texts past their retention (hub/retention.py). With several nodes on one
PostgreSQL spool each job runs on one node at a time, the holder of its cluster lock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import datetime, timedelta
from typing import Protocol

from hub.clock import Clock, utcnow
from hub.errors import TemporaryFailure
from hub.faultlog import FaultLog
from hub.inbound import InboundDesk
from hub.model import UnknownOutcome
from hub.policies import ReceiptTimeout
from hub.ports import (
    Carrier,
    Coordination,
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
        coordination: Coordination | None = None,
        unknown_outcome: UnknownOutcome = UnknownOutcome.RESEND,
    ) -> None:
        self._runner = runner
        # What becomes of the messages of a node that died with them (P7).
        self._unknown = unknown_outcome
        # Several nodes: a job runs where its lock is held (taken at a run, kept while
        # the node lives); without, every job runs here (one node).
        self._coordination = coordination
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
        """Run each job this node may run now; what each did, by the job's result name
        (a job another node runs is left out)."""
        now = self._clock()
        done: dict[str, int] = {}
        try:
            for job, key, work in self._jobs(now):
                if await self._leads(job):
                    done[key] = await work()
        except TemporaryFailure as exc:  # said once while it lasts, not at every run
            self._faults.failed(str(exc))
            return {}
        self._faults.cleared()
        if any(done.values()):
            log.info("maintenance: %s", done, extra={"action": "maintenance", **done})
        return done

    def _jobs(self, now: datetime) -> list[tuple[str, str, Callable[[], Awaitable[int]]]]:
        """(job, result name, work), in the order they run."""
        spool, call = self._runner.spool, self._runner.call
        inbound, retention = self._inbound, self._retention

        async def none() -> int:
            return 0

        return [
            ("lease-recovery", "recovered",
             lambda: call(spool.recover_expired_leases, now, self._held(), self._unknown)),
            ("expiry", "expired", lambda: call(spool.expire_due, now)),
            ("dead-letter", "dead_lettered",
             lambda: call(spool.dead_letter, now - self._max_age, now)),
            ("receipt-timeouts", "no_report", lambda: self._settle_reports(now)),
            ("held-reports-purge", "unknown_reports_dropped",
             lambda: call(spool.purge_held_reports, now - self._held_report_ttl)),
            ("idempotency-purge", "idempotency_keys_purged",
             lambda: call(spool.purge_keys, now)),
            # Inbound messages a crash left unrouted get their emails and webhooks.
            ("inbound-routing", "routed", none if inbound is None else inbound.route_pending),
            ("retention", "texts_purged", none if retention is None else retention.run),
        ]

    async def _leads(self, job: str) -> bool:
        """Whether this node runs `job`: always alone; with several nodes, while it holds
        the job's lock (kept from run to run, so a job stays on one node until that node
        stops or dies, and its lock passes to the next node that asks)."""
        coordination = self._coordination
        if coordination is None:
            return True
        name = f"job:{job}"
        if coordination.holds(name):
            return True
        if await coordination.try_lock(name) is None:
            return False
        log.info("maintenance: this node now runs %s", job,
                 extra={"action": "leader", "job": job})
        return True

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
