"""The simulator carrier: the embedded default, so the hub runs with no SMSC. It accepts
submissions, returns carrier ids and, after a delay, sends delivery reports through the
same report path a real carrier uses. Outcomes are chosen by the recipient's last digits.
Like a real SMSC it does not forget the reports it owes when the hub goes down: at start
it re-derives them from the messages the spool still holds as submitted to it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, replace
from itertools import count
from typing import Any

from hub import cpa
from hub.clock import Clock, utcnow
from hub.errors import TemporaryFailure
from hub.faultlog import FaultLog
from hub.model import (
    DeliveryReport,
    ErrorInfo,
    InboundMessage,
    Message,
    Status,
    SubmitResult,
    Verdict,
)
from hub.ports import CarrierSink, ReceiptStore
from hub.spoolcall import SpoolThreads
from hub.tasks import cancel_all

log = logging.getLogger(__name__)
OWED_PAGE = 1000  # messages read per page when re-deriving owed reports at start


@dataclass(frozen=True, slots=True)
class SimulatorRules:
    """What the simulator answers, from `[simulator]`."""
    report_delay: float = 1.0
    undelivered_suffixes: tuple[str, ...] = ()
    rejected_suffixes: tuple[str, ...] = ()
    throttled_suffixes: tuple[str, ...] = ()
    retry_after_failed_report: float = 1.0


class SimulatorCarrier:
    """A carrier in-process: accepts every submit, answers by the number's last digits
    (undelivered, rejected, throttled) and sends the delivery report after
    `report_delay`, through the same CarrierSink a real carrier uses. Given the spool's
    ReceiptStore role (`owed`), it also sends at start the reports an earlier run owed,
    and answers queries (query_sm) with the report a message would get."""
    name = "simulator"

    def __init__(self, rules: SimulatorRules, clock: Clock = utcnow,
                 owed: SpoolThreads[ReceiptStore] | None = None) -> None:
        self._rules = rules
        self._clock = clock
        self._owed = owed
        self._sink: CarrierSink | None = None
        # A per-process prefix keeps carrier ids unique across restarts.
        self._prefix = f"sim-{secrets.token_hex(4)}-"
        self._ids = count(1)
        self._pending: set[asyncio.Task[None]] = set()
        # Every report in flight retries while the spool is away: one line, not one each.
        self._refused = FaultLog(log, "delivery reports not taken, retrying", "report")

    async def start(self, sink: CarrierSink) -> None:
        self._sink = sink
        if self._owed is not None:
            self._spawn(self._redeliver_owed(self._owed))

    async def stop(self) -> None:
        # Like an SMSC connection going away: reports not yet sent are not sent.
        await cancel_all(list(self._pending))
        self._sink = None

    async def inject_inbound(self, sender: str, recipient: str, text: str) -> None:
        """A handset answers: hand an inbound message to the hub as an SMSC would, and
        return once the hub has committed it (when an SMSC would get its ack)."""
        if self._sink is None:
            raise RuntimeError("the simulator is not started")
        mo = InboundMessage(self.name, sender, recipient, text, self._clock(),
                            carrier_message_id=f"{self._prefix}mo-{next(self._ids)}")
        await self._sink.inbound([mo])

    async def submit(self, messages: Sequence[Message]) -> list[SubmitResult]:
        results: list[SubmitResult] = []
        reports: list[DeliveryReport] = []
        for message in messages:
            result = self._answer(message)
            results.append(result)
            if result.carrier_message_id is not None:
                reports.append(self._report_for(message, result.carrier_message_id))
        if reports:
            self._spawn(self._deliver_later(reports))
        return results

    async def query(self, messages: Sequence[Message]) -> list[DeliveryReport]:
        """query_sm: the report each of its messages gets, by the same suffix rules."""
        return [self._report_for(m, m.carrier_message_id) for m in messages
                if m.carrier == self.name and m.carrier_message_id is not None]

    def _answer(self, message: Message) -> SubmitResult:
        late = cpa.too_late(message, self._clock())
        if late is not None:
            return late
        number = message.recipient
        if number.endswith(self._rules.rejected_suffixes or ("\0",)):
            return SubmitResult(message.id, Verdict.REJECTED,
                                error=ErrorInfo("invalid_destination",
                                                "destination address rejected"))
        if number.endswith(self._rules.throttled_suffixes or ("\0",)):
            return SubmitResult(message.id, Verdict.RETRY,
                                error=ErrorInfo("throttled", "throttling error"))
        return SubmitResult(message.id, Verdict.SUBMITTED,
                            carrier_message_id=f"{self._prefix}{next(self._ids)}")

    def _report_for(self, message: Message, carrier_id: str) -> DeliveryReport:
        if message.recipient.endswith(self._rules.undelivered_suffixes or ("\0",)):
            return DeliveryReport(self.name, carrier_id, Status.UNDELIVERED, self._clock(),
                                  error=ErrorInfo("absent_subscriber",
                                                  "handset not reachable"),
                                  detail="UNDELIV")
        return DeliveryReport(self.name, carrier_id, Status.DELIVERED, self._clock(),
                              detail="DELIVRD")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _redeliver_owed(self, owed: SpoolThreads[ReceiptStore]) -> None:
        """As an SMSC does when a bind comes back: after `report_delay`, send the reports
        still owed for messages an earlier run took (the ones it held in memory died
        with it), a page at a time. Messages this run took have their own on the way."""
        await asyncio.sleep(self._rules.report_delay)
        after = ""
        while self._sink is not None:
            try:
                page = await owed.call(owed.spool.awaiting_reports, self.name, after,
                                       OWED_PAGE)
            except Exception:  # the spool is busy or away: try the same page again
                log.exception("could not read owed reports; retrying", extra={"action": "report"})
                await asyncio.sleep(self._rules.retry_after_failed_report)
                continue
            reports = [self._report_for(m, m.carrier_message_id) for m in page
                       if m.carrier_message_id is not None
                       and not m.carrier_message_id.startswith(self._prefix)]
            if reports:
                log.info("sending %d delivery reports owed since before this start",
                         len(reports), extra={"action": "report"})
                await self._deliver(reports)
            if len(page) < OWED_PAGE:
                return
            after = page[-1].id

    async def _deliver_later(self, reports: list[DeliveryReport]) -> None:
        await asyncio.sleep(self._rules.report_delay)
        await self._deliver(reports)

    async def _deliver(self, reports: list[DeliveryReport]) -> None:
        while self._sink is not None:
            now = self._clock()
            stamped = [replace(r, at=now) for r in reports]
            try:
                await self._sink.report(stamped)
                self._refused.cleared()
                return
            except TemporaryFailure as exc:  # the spool is away; an SMSC would resend
                self._refused.failed(str(exc))
            except Exception:
                log.exception("report delivery failed; retrying", extra={"action": "report"})
            await asyncio.sleep(self._rules.retry_after_failed_report)

