"""What a hub node runs: the core every service shares, the Service protocol each
adapter's service meets, and the group that starts services in order and stops them in
reverse."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from hub.accounts import Credentials
from hub.dispatcher import Dispatcher
from hub.inbound import InboundDesk
from hub.intake import Intake
from hub.metrics import Metrics
from hub.outbox import OutboxRunner
from hub.ports import Spool
from hub.spoolcall import SpoolThreads

log = logging.getLogger(__name__)


@dataclass
class Core:
    """The one of each that every service of a node shares: the spool seam, the one way
    in, credentials, metrics, the dispatcher, the inbound desk and the outbox."""

    runner: SpoolThreads[Spool]
    intake: Intake
    credentials: Credentials
    metrics: Metrics
    dispatcher: Dispatcher
    inbound: InboundDesk
    outbox: OutboxRunner


class Service(Protocol):
    """Something a node starts and stops: a listener, a runner, a periodic job."""

    name: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class Task:
    """A Service from a pair of calls, for parts whose start or stop is synchronous."""

    def __init__(self, name: str, start: Callable[[], Awaitable[None] | None],
                 stop: Callable[[], Awaitable[None] | None]) -> None:
        self.name = name
        self._start = start
        self._stop = stop

    async def start(self) -> None:
        done = self._start()
        if done is not None:
            await done

    async def stop(self) -> None:
        done = self._stop()
        if done is not None:
            await done


class ServiceGroup:
    """Services started one after another; stopped in the reverse order, each stop
    attempted even if an earlier one failed, so one broken service never keeps the
    others (or the spool) open."""

    def __init__(self) -> None:
        self._started: list[Service] = []

    async def start(self, service: Service) -> None:
        await service.start()
        self._started.append(service)

    async def stop(self) -> None:
        while self._started:
            service = self._started.pop()
            try:
                await service.stop()
            except Exception:
                log.exception("stopping %s failed", service.name, extra={"action": "stop"})

    @property
    def names(self) -> list[str]:
        return [s.name for s in self._started]
