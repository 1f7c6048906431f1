"""The dispatcher: claims due messages in batches, submits them through the carrier that
routing picks, records each outcome under its lease, and is the one sink every carrier
sends delivery reports and inbound messages to."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from hub import cpa
from hub.clock import Clock, utcnow
from hub.errors import TemporaryFailure
from hub.faultlog import FaultLog
from hub.groupcommit import GroupCommitter
from hub.inbound import InboundDesk
from hub.metrics import Metrics
from hub.model import (
    Claim,
    DeliveryReport,
    ErrorInfo,
    InboundMessage,
    Message,
    Status,
    SubmitResult,
    Transition,
    UnknownOutcome,
    Verdict,
)
from hub.policies import RetryPolicy, expire
from hub.ports import Carrier, Coordination, InboundStore, MessageQueue, StreamingCarrier
from hub.routing import Router, is_up
from hub.spoolcall import SpoolThreads, until_written
from hub.turns import PerTurn

log = logging.getLogger(__name__)

# The error code a carrier gives for a message it could not send at all (no connection):
# safe to pass to the next carrier at once, since nothing went out.
UNAVAILABLE = "carrier_unavailable"
# The code of a message a carrier did not send because an earlier message to the same
# recipient in its batch goes back to the queue: sent now, it would overtake that one.
HELD_FOR_ORDER = "held_for_order"
# Codes of results that say the carrier sent nothing and would send the recipient's next
# message no more than this one: those held behind it share its result.
_SHARED_WITH_NEXT = frozenset({UNAVAILABLE, cpa.HELD})


def held_behind(message: Message, earlier: SubmitResult) -> SubmitResult:
    """The result for `message`, not sent because `earlier` (the result of a message to
    the same recipient ahead of it in the batch) was to be retried: a carrier that submits
    one recipient's messages one after the other stops there, so they keep their order."""
    error = earlier.error
    if error is None or error.code not in _SHARED_WITH_NEXT:
        error = ErrorInfo(HELD_FOR_ORDER, "not sent: an earlier message to the same "
                                          "recipient waits for its retry")
    return SubmitResult(message.id, Verdict.RETRY, error=error)


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """How the dispatcher claims and waits, from `[dispatcher]`."""
    batch_size: int = 500
    poll_interval: float = 0.25
    lease_seconds: float = 60.0
    shutdown_timeout: float = 10.0
    max_inflight: int = 2  # claimed batches being submitted at once
    # Seconds to wait after claiming less than a full batch before the next claim, so a
    # steady flow is claimed in larger batches: each claim, record and receipt
    # transaction then rewrites the same spool pages for more messages. A lone message
    # is still claimed at once (the wait comes after a claim, not before).
    gather: float = 0.01
    report_retry_interval: float = 0.5  # how often held reports are matched again
    # The poll while wake-ups arrive from every node (PostgreSQL LISTEN): only messages
    # that become due by the clock (retries, schedules) wait for it.
    listening_poll_interval: float = 2.0
    # What becomes of messages this node was sending when it died, taken back at its
    # next start (P7): sent again, or failed as outcome_unknown.
    unknown_outcome: UnknownOutcome = UnknownOutcome.RESEND


T = TypeVar("T")

# The cluster-wide lock of the held-reports matcher: one node runs it at a time.
HELD_REPORTS_JOB = "job:held-reports"


# What the dispatcher writes after submitting: an outcome under its claim's lease token,
# or a carrier's delivery report.
Settling = tuple[str, Transition] | DeliveryReport


class DispatchStore(MessageQueue, InboundStore, Protocol):
    """The spool roles the dispatcher uses: the queue, and inbound messages (its
    CarrierSink hands them to the InboundDesk)."""


class Dispatcher:
    """Claims due messages in batches under a lease in this node's name, hands each to
    the carrier the Router picks, and records the outcome (or the RetryPolicy's next
    attempt) only while the lease holds. As the CarrierSink it takes every carrier's
    delivery reports (applied in groups, held briefly when they beat the submit
    answer) and inbound messages (passed to the InboundDesk)."""

    def __init__(
        self,
        runner: SpoolThreads[DispatchStore],
        router: Router,
        policy: RetryPolicy,
        settings: DispatchSettings,
        node: str,
        metrics: Metrics,
        clock: Clock = utcnow,
        inbound: InboundDesk | None = None,
        coordination: Coordination | None = None,
    ) -> None:
        self._runner = runner
        self._coordination = coordination
        self._spool = runner.spool
        self._router = router
        self._policy = policy
        self._settings = settings
        self._node = node
        self._metrics = metrics
        self._clock = clock
        self._inbound = inbound or InboundDesk(runner, clock=clock)
        # Outcomes to record (lease token, transition) and reports from carriers, written
        # together: what arrives while one write runs goes in the next one (spool.settle).
        self._settler: GroupCommitter[Settling, bool] = GroupCommitter(
            self._settle, 5000, runner.start, self._spool.writer_turn)
        self._wake = asyncio.Event()
        # A spool that cannot be written fails every claim, every poll: said once.
        self._claim_faults = FaultLog(log, "claims failing, retrying", "claim")
        self._stopping = False
        self._inflight: set[asyncio.Task[None]] = set()
        self._held: set[str] = set()  # lease tokens of the claims being worked on
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle -------------------------------------------------------------------

    async def start(self, *, claim: bool = True) -> None:
        """Start carriers and report handling; with `claim`, also the claim loop."""
        for carrier in self._router.carriers.values():
            await carrier.start(self)
        # What the node held when it last stopped: a clean stop released everything, so
        # these were with it when it died, their outcome unknown.
        unknown = self._settings.unknown_outcome
        released = await self._runner.call(self._spool.release, self._node, self._clock(),
                                           after_crash=True, unknown=unknown)
        if released:
            log.warning("%d messages were being sent when this node stopped: their outcome "
                        "is unknown; %s", released,
                        "sent again" if unknown is UnknownOutcome.RESEND else "failed",
                        extra={"action": "release"})
        self._tasks.append(asyncio.create_task(self._held_reports_loop()))
        if claim:
            self._tasks.append(asyncio.create_task(self._claim_loop()))

    async def stop(self) -> None:
        """Stop claiming, let in-flight batches finish within the timeout, release the rest."""
        self._stopping = True
        self._wake.set()
        if self._inflight:
            _, pending = await asyncio.wait(
                self._inflight, timeout=self._settings.shutdown_timeout
            )
            for task in pending:
                task.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._inflight, return_exceptions=True)
        with contextlib.suppress(TemporaryFailure):
            released = await self._runner.call(self._spool.release, self._node, self._clock())
            if released:
                log.info("released %d unfinished messages", released,
                         extra={"action": "release"})
        for carrier in self._router.carriers.values():
            await carrier.stop()

    def carrier_figures(self) -> dict[str, dict[str, float]]:
        """What each carrier reports of itself (a carrier with `stats()`), for /metrics
        and `smshub carriers`; every carrier shows whether it is up."""
        out: dict[str, dict[str, float]] = {}
        for name, carrier in self._router.carriers.items():
            stats = getattr(carrier, "stats", None)
            values = stats() if callable(stats) else {}
            figures = {k: float(v) for k, v in values.items()
                       if isinstance(v, int | float) and not isinstance(v, bool)}
            figures["up"] = float(is_up(carrier))
            out[name] = figures
        return out

    def held_leases(self) -> frozenset[str]:
        """The lease tokens of the batches this dispatcher is working on now. Upkeep
        leaves them alone: their leases may look expired only because the wall clock
        was stepped forward, and taking them back would submit them twice."""
        return frozenset(self._held)

    def wake(self) -> None:
        """New messages were committed: claim now instead of at the next poll."""
        self._wake.set()

    @property
    def carriers(self) -> Mapping[str, Carrier]:
        """The carriers it routes to, by name (upkeep asks those that can answer)."""
        return self._router.carriers

    # --- claiming and submitting --------------------------------------------------------

    async def _claim_loop(self) -> None:
        slots = asyncio.Semaphore(self._settings.max_inflight)
        while not self._stopping:
            await slots.acquire()
            # Cleared before the claim, not after: a wake-up that comes while the claim
            # runs (work committed just after its snapshot) must not be lost.
            self._wake.clear()
            claim = None if self._standing_by() else await self._claim_or_none()
            if claim is None or not claim.messages:
                slots.release()
                await self._idle()
                continue
            self._held.add(claim.token)
            task = asyncio.create_task(self._work(claim))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            task.add_done_callback(lambda _: slots.release())
            if len(claim.messages) < self._settings.batch_size and self._settings.gather:
                await asyncio.sleep(self._settings.gather)

    async def _claim_or_none(self) -> Claim | None:
        try:
            claim = await self._runner.call(
                self._spool.claim, self._node, self._settings.batch_size,
                self._settings.lease_seconds, self._clock(),
            )
        except TemporaryFailure as exc:
            self._claim_faults.failed(str(exc))
            return None
        self._claim_faults.cleared()
        return claim

    def _standing_by(self) -> bool:
        """Every carrier it routes to is shared with other nodes that hold all of its
        binds (`standby`): claiming here would only bounce messages back as retries."""
        if self._coordination is None:
            return False
        carriers = self._router.carriers
        return all(getattr(carriers[name], "standby", False) for name in self._router.names())

    async def _idle(self) -> None:
        interval = self._settings.poll_interval
        if self._coordination is not None and self._coordination.listening:
            interval = max(interval, self._settings.listening_poll_interval)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval):
                await self._wake.wait()

    def _wake_for_retries(self, transitions: Sequence[Transition]) -> None:
        """A retry due before the next poll is claimed when due, not at the poll: the
        poll is slow while wake-ups come from the other nodes (PostgreSQL)."""
        dues = [t.due_at for t in transitions
                if t.status is Status.QUEUED and t.due_at is not None]
        if not dues or self._coordination is None:
            return
        delay = max((min(dues) - self._clock()).total_seconds(), 0.0)
        if delay < self._settings.listening_poll_interval:
            asyncio.get_running_loop().call_later(delay, self._wake.set)

    async def _work(self, claim: Claim) -> None:
        try:
            await self._process(claim)
        finally:
            self._held.discard(claim.token)

    async def run_once(self) -> int:
        """Claim and process one batch now; returns how many messages it held (tests)."""
        claim = await self._runner.call(
            self._spool.claim, self._node, self._settings.batch_size,
            self._settings.lease_seconds, self._clock(),
        )
        if claim.messages:
            await self._process(claim)
        return len(claim.messages)

    async def _process(self, claim: Claim) -> None:
        now = self._clock()
        transitions: list[Transition] = []
        live: list[Message] = []
        for message in claim.messages:
            if message.expires_at is not None and message.expires_at <= now:
                transitions.append(expire(message))
            else:
                live.append(message)
        # Outcomes a carrier tells one by one are recorded as they come, grouped with
        # those that arrive meanwhile: a crash then leaves unrecorded (and so sent again
        # after the lease) only what was in flight, not the whole claimed batch (P7).
        # Those told in one turn of the event loop (the answers of one read from an
        # SMSC) go to the spool as one record, one task: not a task each.
        told: PerTurn[Transition] = PerTurn(functools.partial(self._record, claim))
        recorded: set[str] = set()
        late: list[Message] = []  # marketing the carrier kept back: CPA hours closed
        # A recipient's retries keep the order of its messages: none is due before the
        # one claimed ahead of it, which the backoff's jitter would otherwise allow (a
        # batch claimed while no bind was up went out shuffled once one was).
        retry_floor: dict[str, datetime] = {}

        def decide(message: Message, name: str, result: SubmitResult) -> Transition:
            decided = self._policy.decide(message, name, result, self._clock(),
                                          retry_floor.get(message.recipient))
            if decided.status is Status.QUEUED and decided.due_at is not None:
                retry_floor[message.recipient] = decided.due_at
            return decided

        groups = self._router.split(live)
        while groups:
            failover: dict[str, list[Message]] = {}
            for name, messages in groups.items():
                by_id = {m.id: m for m in messages}

                def at_once(result: SubmitResult, name: str = name,
                            by_id: dict[str, Message] = by_id) -> None:
                    message = by_id[result.message_id]
                    if self._passes_on(message, name, result) or _too_late(result):
                        return  # decided when the batch is back
                    recorded.add(message.id)
                    told.add(decide(message, name, result))

                results = await self._submit(name, messages, at_once)
                for message, result in zip(messages, results, strict=True):
                    if _too_late(result):  # not sent: the hours closed on its way out
                        late.append(message)
                        continue
                    self._count(name, result)
                    nxt = self._failover(message, name, result)
                    if nxt is not None:
                        failover.setdefault(nxt, []).append(message)
                        continue
                    if message.id not in recorded:
                        transitions.append(decide(message, name, result))
            groups = failover
        self._metrics.note_dispatched(len(live) - len(late))
        await told.wait()
        await self._record(claim, transitions)
        if late:
            await self._hold_unsent(claim, late)

    async def _hold_unsent(self, claim: Claim, late: list[Message]) -> None:
        """Marketing messages the carrier kept back when the hours closed: held until
        they open. Written as outcomes are, until the spool takes it: left to their
        lease, they would come back as of unknown outcome though never sent."""
        held = await self._persist(claim, len(late), lambda: self._runner.call(
            self._spool.hold_unsent, claim.token, late, self._clock()))
        if held:
            log.info("%d marketing messages held: direct-marketing hours closed before "
                     "they were sent", held, extra={"action": "cpa-hold"})

    def _passes_on(self, message: Message, carrier: str, result: SubmitResult) -> bool:
        """Whether the message will go to the next carrier (no side effects)."""
        return (result.error is not None and result.error.code == UNAVAILABLE
                and self._router.next_after(message, carrier) is not None)

    def _failover(self, message: Message, carrier: str, result: SubmitResult) -> str | None:
        """A message the carrier could not even send (no bind up) goes to the next carrier
        on its list now; one that may have reached the SMSC waits for its retry."""
        if result.error is None or result.error.code != UNAVAILABLE:
            return None
        nxt = self._router.next_after(message, carrier)
        if nxt is not None:
            self._metrics.carrier_errors[f"{carrier}|failover"] += 1
        return nxt

    async def _submit(self, name: str, messages: list[Message],
                      at_once: Callable[[SubmitResult], None]) -> list[SubmitResult]:
        carrier = self._router.carriers[name]
        try:
            if isinstance(carrier, StreamingCarrier):
                results = await carrier.submit_each(messages, at_once)
            else:
                results = await carrier.submit(messages)
            if len(results) != len(messages):
                raise RuntimeError(f"{len(results)} results for {len(messages)} messages")
        except Exception as exc:  # a broken carrier must not lose the batch: retry it all
            log.exception("carrier %s failed a batch", name, extra={"action": "submit"})
            error = ErrorInfo("carrier_unavailable", f"{name}: {exc}")
            return [SubmitResult(m.id, Verdict.RETRY, error=error) for m in messages]
        return results

    def _count(self, carrier: str, result: SubmitResult) -> None:
        self._metrics.dispatched[f"{carrier}|{result.verdict.value}"] += 1
        if result.error is not None:
            self._metrics.carrier_errors[f"{carrier}|{result.error.code}"] += 1

    async def _record(self, claim: Claim, transitions: Sequence[Transition]) -> None:
        """Record under the lease (`_persist`)."""
        done = await self._persist(claim, len(transitions), lambda: self._settler.submit(
            [(claim.token, t) for t in transitions]))
        self._wake_for_retries(transitions)
        if not all(done):
            log.warning("%d outcomes not recorded: lease no longer held",
                        done.count(False), extra={"action": "record"})

    async def _persist(self, claim: Claim, count: int,
                       write: Callable[[], Awaitable[T]]) -> T:
        """`write` what became of `count` of the claim's messages, until the spool takes
        it (`until_written`), past the end of the lease too: the claim stays this node's
        own meanwhile (upkeep leaves held leases alone), and the lease fences a write
        that comes too late (another node took the messages back)."""
        warned = False

        def failed(exc: TemporaryFailure) -> None:
            nonlocal warned
            if not warned and self._clock() >= claim.expires_at:
                warned = True
                log.warning("%d outcomes not recorded by the end of their lease (%s); "
                            "still trying", count, exc, extra={"action": "record"})

        return await until_written(write, failed)

    def _settle(self, items: list[Settling]) -> list[bool]:
        """One spool write for the outcomes and reports waiting (on a spool thread, the
        settler's): whether each outcome was recorded (its lease still held); reports
        are applied or held (True)."""
        records: dict[str, list[Transition]] = {}
        reports: list[DeliveryReport] = []
        for item in items:
            if isinstance(item, DeliveryReport):
                reports.append(item)
            else:
                records.setdefault(item[0], []).append(item[1])
        applied = set(self._spool.settle(list(records.items()), reports, self._clock()))
        return [isinstance(item, DeliveryReport) or item[1].message_id in applied
                for item in items]

    # --- what carriers send back: inbound messages and delivery reports ----------------

    async def inbound(self, messages: Sequence[InboundMessage]) -> None:
        """CarrierSink: returns once the inbound messages are committed."""
        await self._inbound.receive(messages)

    async def report(self, reports: Sequence[DeliveryReport]) -> None:
        """CarrierSink: returns once the reports are committed (applied, or held by the
        spool until their submission is recorded)."""
        # A report that overtook the record of its own submission is held by the spool
        # and applied when that record is made: no in-memory state to lose.
        await self._settler.submit(list(reports))
        for r in reports:
            self._metrics.reports[r.status.value] += 1

    async def _held_reports_loop(self) -> None:
        """Reports held by the spool are applied when their submission is recorded; this
        catches the ones committed while that record was in flight (PostgreSQL)."""
        while True:
            await asyncio.sleep(self._settings.report_retry_interval)
            coordination = self._coordination
            if coordination is not None and await coordination.try_lock(
                    HELD_REPORTS_JOB) is None:
                continue  # another node runs it
            with contextlib.suppress(TemporaryFailure):
                await self._runner.call(self._spool.apply_held_reports, self._clock())


def _too_late(result: SubmitResult) -> bool:
    """A result of hub.cpa.too_late: the carrier did not send a marketing message because
    the hours closed before its turn came."""
    return result.error is not None and result.error.code == cpa.HELD and (
        result.verdict is Verdict.RETRY)
