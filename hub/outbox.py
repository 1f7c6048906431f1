"""The outbox runner: delivers what the hub owes customers (reply emails, webhook events)
through their channels, with retries and backoff; items live in the spool, so nothing is
lost on a restart."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub.clock import Clock, seconds, utcnow
from hub.errors import Rejected, RetryLater, TemporaryFailure
from hub.faultlog import FaultLog
from hub.groupcommit import GroupCommitter
from hub.model import ErrorInfo, OutboxItem, OutboxResult, OutboxStatus
from hub.policies import RetryPolicy
from hub.ports import OutboxChannel, OutboxStore
from hub.spoolcall import SpoolThreads, until_written
from hub.tasks import cancel_all

log = logging.getLogger(__name__)

# Starts one claimed item's delivery (and its recording).
Starter = Callable[[OutboxItem], Coroutine[Any, Any, None]]

# While another node's commits wake the runner (LISTEN/NOTIFY), polling only catches
# retries falling due: this often is enough.
LISTENING_POLL_INTERVAL = 2.0

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
    # Deliveries in flight to one target at most (None: the channel's concurrency), so
    # one slow receiver cannot take every slot.
    per_target: int | None = None


def target(item: OutboxItem) -> str:
    """Where an item goes: its webhook endpoint, or else its address (a push URL, a
    mailbox). The spool's claim names targets the same way (`exclude`)."""
    return item.endpoint_id or item.address


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
        # Lease tokens of the items this node is delivering or still recording (by how
        # many items): not claimed again here once their lease runs out meanwhile.
        self._held: Counter[str] = Counter()
        # Whether commits anywhere wake this runner (set by the composition root).
        self.listening: Callable[[], bool] = lambda: False

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
        """Work one channel continuously: claim as delivery slots free up, never more
        than `per_target` in flight to one target, so a receiver that hangs until the
        timeout delays only its own items, not every account's (head-of-line)."""
        lane = _Lane(self._tune(name))
        wake = self._wakes[name]
        interval = lane.tune.poll_interval or self._settings.poll_interval
        recorder: GroupCommitter[tuple[str, OutboxResult], None] = GroupCommitter(
            self._record, lane.tune.batch_size, self._runner.start)
        try:
            while True:
                # Cleared before the claim: a wake-up during it (another node's commit
                # just after the claim's snapshot, a delivery finishing) must not wait
                # for the poll.
                wake.clear()
                lane.freed.clear()
                found = 0
                if lane.wants_more():
                    try:
                        found = await self._claim_into(name, lane, recorder)
                    except TemporaryFailure as exc:
                        self._faults[name].failed(str(exc))
                    else:
                        self._faults[name].cleared()
                if found and lane.wants_more():
                    continue  # there may be more due at once
                waits = [asyncio.ensure_future(wake.wait())]
                if lane.held:
                    waits.append(asyncio.ensure_future(lane.freed.wait()))
                poll = max(interval, LISTENING_POLL_INTERVAL) if self.listening() else interval
                try:
                    await asyncio.wait(waits, timeout=poll,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
        finally:
            await cancel_all(lane.tasks)

    async def _claim_into(self, name: str, lane: _Lane,
                          recorder: GroupCommitter[tuple[str, OutboxResult], None]) -> int:
        """Claim what the lane has room for, at most one target's share at a time and
        none for a target that already has its share, and start delivering it (beyond a
        target's share in flight, its items wait their turn in memory). Returns how many
        were claimed."""
        now = self._clock()
        items = await self._runner.call(
            self._runner.spool.claim_outbox, name, lane.room(),
            self._settings.lease_seconds, now, self._node, lane.full_targets(),
            list(self._held),
        )
        self._held.update(item.lease_token or "" for item in items)
        if items:
            channel = self._channels[name]
            await self._refresh(channel)
            start = functools.partial(self._deliver_one, channel, lane, recorder=recorder)
            for item in items:
                lane.accept(item, start)
        return len(items)

    async def _refresh(self, channel: OutboxChannel) -> None:
        # A channel that reads its settings from the spool (webhook endpoints and their
        # secrets) reads them once per claim: fresh enough, and not once per item.
        refresh = getattr(channel, "refresh", None)
        if refresh is not None:
            await refresh()

    async def _deliver_one(self, channel: OutboxChannel, lane: _Lane, item: OutboxItem,
                           recorder: GroupCommitter[tuple[str, OutboxResult], None]) -> None:
        token = item.lease_token or ""
        try:
            result = await self._deliver(channel, lane.tune, item)
            # Recorded until the spool takes it (a database restart or failover): given
            # up, the delivery would be made again once the lease ran out. The lease token
            # fences a result that comes after another node took the item over.
            await until_written(lambda: recorder.submit([(token, result)]),
                                lambda exc: self._faults[item.channel].failed(str(exc)))
        finally:
            lane.finish(item)
            self._held[token] -= 1
            if self._held[token] <= 0:
                del self._held[token]

    async def run_once(self) -> int:
        """Deliver one batch per channel; returns how many items were tried (tests)."""
        tried = 0
        for name in self._channels:
            tried += await self.run_channel(name)
        return tried

    async def run_channel(self, name: str) -> int:
        """Claim and deliver one batch of one channel, then return how many were tried
        (tests and one-off runs; the service's loop claims continuously instead)."""
        tune = self._tune(name)
        items = await self._runner.call(
            self._runner.spool.claim_outbox, name, tune.batch_size,
            self._settings.lease_seconds, self._clock(), self._node,
        )
        if not items:
            return 0
        channel = self._channels[name]
        await self._refresh(channel)
        await self._deliver_all(channel, tune, items)
        return len(items)

    async def _deliver_all(self, channel: OutboxChannel, tune: ChannelTuning,
                           items: Sequence[OutboxItem]) -> None:
        """Deliver up to the channel's concurrency at once, recording each result as soon
        as it is known (grouped with the others that finish meanwhile), so a crash
        mid-batch sends again only what was in flight, not the whole batch."""
        recorder: GroupCommitter[tuple[str, OutboxResult], None] = GroupCommitter(
            self._record, tune.batch_size, self._runner.start)
        slots = asyncio.Semaphore(max(tune.concurrency, 1))

        async def one(item: OutboxItem) -> None:
            async with slots:
                result = await self._deliver(channel, tune, item)
            await recorder.submit([(item.lease_token or "", result)])

        await asyncio.gather(*(one(i) for i in items))

    def _record(self, done: list[tuple[str, OutboxResult]]) -> list[None]:
        """The results of deliveries, on the recorder's spool thread."""
        by_token: dict[str, list[OutboxResult]] = {}
        for token, result in done:
            by_token.setdefault(token, []).append(result)
        for token, results in by_token.items():
            self._runner.spool.record_outbox(token, results, self._clock())
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


class _Lane:
    """One channel's claimed items: how many are held (in flight or waiting their turn),
    per target, and the delivery tasks. A target has at most `per_target` deliveries in
    flight and fewer than twice that held, so a target that hangs holds a bounded part
    of the lane and never the rest."""

    def __init__(self, tune: ChannelTuning) -> None:
        self.tune = tune
        self.capacity = max(tune.concurrency, 1)
        self.per_target = max(min(tune.per_target or self.capacity, self.capacity), 1)
        self.held = 0
        self.inflight: Counter[str] = Counter()
        self.waiting: dict[str, deque[tuple[OutboxItem, Starter]]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.freed = asyncio.Event()

    def room(self) -> int:
        """How many to claim next: one target's share at most, so a single claim cannot
        fill the lane with one target's items."""
        return min(self.tune.batch_size, self.per_target, self.capacity - self.held)

    def wants_more(self) -> bool:
        # Claim when a quarter of the lane (or a share) is free, not per freed slot:
        # each claim is a write transaction.
        free = self.capacity - self.held
        return free >= max(1, min(self.tune.batch_size, self.per_target, self.capacity // 4))

    def full_targets(self) -> list[str]:
        return [t for t in self.inflight if self._held_by(t) >= self.per_target]

    def _held_by(self, key: str) -> int:
        return self.inflight[key] + len(self.waiting.get(key, ()))

    def accept(self, item: OutboxItem, starter: Starter) -> None:
        self.held += 1
        key = target(item)
        if self.inflight[key] < self.per_target:
            self._start(key, item, starter)
        else:
            self.waiting.setdefault(key, deque()).append((item, starter))

    def _start(self, key: str, item: OutboxItem, starter: Starter) -> None:
        self.inflight[key] += 1
        task = asyncio.create_task(starter(item))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def finish(self, item: OutboxItem) -> None:
        key = target(item)
        was_full = self._held_by(key) >= self.per_target
        wanted = self.wants_more()
        self.held -= 1
        self.inflight[key] -= 1
        queue = self.waiting.get(key)
        if queue:
            self._start(key, *queue.popleft())
            if not queue:
                del self.waiting[key]
        elif self.inflight[key] <= 0:
            del self.inflight[key]
        # Wake the claimer only when a claim could now find more: the lane crossed into
        # wanting more, or this target stopped being excluded.
        if (not wanted and self.wants_more()) or (
                was_full and self._held_by(key) < self.per_target):
            self.freed.set()
