"""The outbox runner: delivers what the hub owes customers (reply emails, webhook events)
through their channels, with retries and backoff; items live in the spool, so nothing is
lost on a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hub.clock import Clock, seconds, utcnow
from hub.errors import Rejected, RetryLater, TemporaryFailure
from hub.faultlog import FaultLog
from hub.groupcommit import GroupCommitter
from hub.model import ErrorInfo, OutboxItem, OutboxResult, OutboxStatus
from hub.policies import RetryPolicy
from hub.ports import OutboxChannel, OutboxStore
from hub.spoolcall import SpoolThreads
from hub.tasks import cancel_all

log = logging.getLogger(__name__)

# A receiver's Retry-After is honoured up to this many seconds; beyond it is a typo or an
# attack on our queue, and our own backoff is the better guess.
MAX_RETRY_AFTER = 86_400


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    """How the outbox runner claims and waits, from `[outbox]`."""
    batch_size: int = 50
    poll_interval: float = 1.0
    lease_seconds: float = 120.0


@dataclass(frozen=True, slots=True)
class ChannelTuning:
    """How one channel is worked: its retry policy (attempts, backoff, how long it keeps
    trying), how many items it claims at once and delivers at the same time."""
    policy: RetryPolicy
    batch_size: int
    concurrency: int = 1
    poll_interval: float | None = None  # None: [outbox] poll_interval


class OutboxRunner:
    """One loop per channel: claims due items (leased, like messages), delivers them
    through the OutboxChannel (up to its concurrency at once), and records each one
    delivered, retry later (RetryPolicy, or the receiver's Retry-After) or failed, the
    whole batch in one spool call. Without a channel for an item's kind, the item waits
    in the spool."""

    def __init__(
        self,
        runner: SpoolThreads[OutboxStore],
        channels: Mapping[str, OutboxChannel],
        policy: RetryPolicy,
        settings: OutboxSettings,
        clock: Clock = utcnow,
        tuning: Mapping[str, ChannelTuning] | None = None,
        node: str = "",
    ) -> None:
        self._runner = runner
        self._node = node
        self._channels = dict(channels)
        self._default = ChannelTuning(policy, settings.batch_size)
        self._tuning = dict(tuning or {})
        self._settings = settings
        self._clock = clock
        self._wakes = {name: asyncio.Event() for name in self._channels}
        # A spool that is away fails every poll alike: said once per channel, not each time.
        self._faults = {name: FaultLog(log, f"outbox {name}", "outbox")
                        for name in self._channels}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self._channels:
            self._tasks = [asyncio.create_task(self._run())]

    async def _run(self) -> None:
        # What this node held when it died is due again now, not when its leases run out.
        with contextlib.suppress(TemporaryFailure):
            released = await self._runner.call(self._runner.spool.release_outbox, self._node,
                                               self._clock())
            if released:
                log.info("outbox: requeued %d items this node held before it stopped",
                         released, extra={"action": "release"})
        await asyncio.gather(*(self._loop(name) for name in self._channels))

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        for channel in self._channels.values():
            close = getattr(channel, "close", None)
            if close is not None:
                await close()

    def wake(self) -> None:
        for event in self._wakes.values():
            event.set()

    def _tune(self, name: str) -> ChannelTuning:
        return self._tuning.get(name, self._default)

    async def _loop(self, name: str) -> None:
        wake = self._wakes[name]
        while True:
            try:
                busy = await self.run_channel(name)
            except TemporaryFailure as exc:
                self._faults[name].failed(str(exc))
                busy = 0
            else:
                self._faults[name].cleared()
            if not busy:
                wake.clear()
                interval = self._tune(name).poll_interval or self._settings.poll_interval
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), interval)

    async def run_once(self) -> int:
        """Deliver one batch per channel; returns how many items were tried (tests)."""
        tried = 0
        for name in self._channels:
            tried += await self.run_channel(name)
        return tried

    async def run_channel(self, name: str) -> int:
        """Claim and deliver one batch of one channel; returns how many were tried."""
        tune = self._tune(name)
        items = await self._runner.call(
            self._runner.spool.claim_outbox, name, tune.batch_size,
            self._settings.lease_seconds, self._clock(), self._node,
        )
        if not items:
            return 0
        channel = self._channels[name]
        # A channel that reads its settings from the spool (webhook endpoints and their
        # secrets) reads them once per batch: fresh enough, and not once per item.
        refresh = getattr(channel, "refresh", None)
        if refresh is not None:
            await refresh()
        await self._deliver_all(channel, tune, items)
        return len(items)

    async def _deliver_all(self, channel: OutboxChannel, tune: ChannelTuning,
                           items: Sequence[OutboxItem]) -> None:
        """Deliver up to the channel's concurrency at once, recording each result as soon
        as it is known (grouped with the others that finish meanwhile), so a crash
        mid-batch sends again only what was in flight, not the whole batch."""
        recorder: GroupCommitter[tuple[str, OutboxResult], None] = GroupCommitter(
            self._record, tune.batch_size)
        slots = asyncio.Semaphore(max(tune.concurrency, 1))

        async def one(item: OutboxItem) -> None:
            async with slots:
                result = await self._deliver(channel, tune, item)
            await recorder.submit([(item.lease_token or "", result)])

        await asyncio.gather(*(one(i) for i in items))

    async def _record(self, done: list[tuple[str, OutboxResult]]) -> list[None]:
        by_token: dict[str, list[OutboxResult]] = {}
        for token, result in done:
            by_token.setdefault(token, []).append(result)
        for token, results in by_token.items():
            await self._runner.call(self._runner.spool.record_outbox, token, results,
                                    self._clock())
        return [None] * len(done)

    async def _deliver(self, channel: OutboxChannel, tune: ChannelTuning,
                       item: OutboxItem) -> OutboxResult:
        try:
            await channel.deliver(item)
        except Rejected as exc:
            log.warning("outbox %s gave up: %s", item.id, exc.reason, extra={"action": "outbox"})
            return OutboxResult(item.id, OutboxStatus.FAILED, error=ErrorInfo(exc.code,
                                                                               exc.reason))
        except RetryLater as exc:
            return self._retry(item, tune, ErrorInfo("retry_later", str(exc)),
                               min(max(exc.retry_after, 1), MAX_RETRY_AFTER))
        except Exception as exc:  # anything else is worth another try
            return self._retry(item, tune,
                               ErrorInfo("temporary", str(exc) or type(exc).__name__))
        return OutboxResult(item.id, OutboxStatus.SENT)

    def _retry(self, item: OutboxItem, tune: ChannelTuning, error: ErrorInfo,
               after: float | None = None) -> OutboxResult:
        now = self._clock()
        policy = tune.policy
        age = (now - item.created_at).total_seconds()
        if item.attempts >= policy.max_attempts or age >= policy.max_age:
            log.warning("outbox %s failed after %d attempts: %s", item.id, item.attempts,
                        error.text, extra={"action": "outbox"})
            return OutboxResult(item.id, OutboxStatus.FAILED, error=error)
        wait = policy.backoff(item.attempts) if after is None else after
        return OutboxResult(item.id, OutboxStatus.PENDING, due_at=now + seconds(wait),
                            error=error)
