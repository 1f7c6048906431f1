"""The outbox runner: delivers what the hub owes customers (reply emails now, webhooks
later) through their channels, with retries and backoff; items live in the spool, so
nothing is lost on a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from hub.clock import Clock, seconds, utcnow
from hub.errors import Rejected, TemporaryFailure
from hub.model import ErrorInfo, OutboxItem, OutboxResult, OutboxStatus
from hub.policies import RetryPolicy
from hub.ports import OutboxChannel, OutboxStore
from hub.spoolcall import SpoolThreads
from hub.tasks import cancel_all

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    """How the outbox runner claims and waits, from `[outbox]`."""
    batch_size: int = 50
    poll_interval: float = 1.0
    lease_seconds: float = 120.0


class OutboxRunner:
    """Claims due outbox items (leased, like messages), delivers each through the
    OutboxChannel its `channel` names, and records delivered, retry later (RetryPolicy)
    or failed. Without a channel for an item's kind, the item waits in the spool."""

    def __init__(
        self,
        runner: SpoolThreads[OutboxStore],
        channels: Mapping[str, OutboxChannel],
        policy: RetryPolicy,
        settings: OutboxSettings,
        clock: Clock = utcnow,
    ) -> None:
        self._runner = runner
        self._channels = dict(channels)
        self._policy = policy
        self._settings = settings
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._channels:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        await cancel_all([self._task])

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                busy = await self.run_once()
            except TemporaryFailure as exc:
                log.warning("outbox: %s", exc, extra={"action": "outbox"})
                busy = 0
            if not busy:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.poll_interval)

    async def run_once(self) -> int:
        """Deliver one batch per channel; returns how many items were tried."""
        tried = 0
        for name, channel in self._channels.items():
            items = await self._runner.call(
                self._runner.spool.claim_outbox, name, self._settings.batch_size,
                self._settings.lease_seconds, self._clock(),
            )
            for item in items:
                result = await self._deliver(channel, item)
                await self._runner.call(self._runner.spool.record_outbox,
                                        item.lease_token or "", [result], self._clock())
            tried += len(items)
        return tried

    async def _deliver(self, channel: OutboxChannel, item: OutboxItem) -> OutboxResult:
        try:
            await channel.deliver(item)
        except Rejected as exc:
            log.warning("outbox %s gave up: %s", item.id, exc.reason, extra={"action": "outbox"})
            return OutboxResult(item.id, OutboxStatus.FAILED, error=ErrorInfo(exc.code,
                                                                               exc.reason))
        except Exception as exc:  # anything else is worth another try
            return self._retry(item, ErrorInfo("temporary", str(exc) or type(exc).__name__))
        return OutboxResult(item.id, OutboxStatus.SENT)

    def _retry(self, item: OutboxItem, error: ErrorInfo) -> OutboxResult:
        if item.attempts >= self._policy.max_attempts:
            log.warning("outbox %s failed after %d attempts: %s", item.id, item.attempts,
                        error.text, extra={"action": "outbox"})
            return OutboxResult(item.id, OutboxStatus.FAILED, error=error)
        due = self._clock() + seconds(self._policy.backoff(item.attempts))
        return OutboxResult(item.id, OutboxStatus.PENDING, due_at=due, error=error)
