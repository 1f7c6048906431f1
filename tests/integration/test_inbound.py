"""The inbound path end to end in one process: the simulator carrier delivers a reply,
the core commits and links it, a route queues an outbox item, the outbox runner delivers
it through a channel (retrying a temporary failure), and an opt-out is never forwarded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from ulid import ULID

from adapters.carriers.simulator import SimulatorCarrier, SimulatorRules
from hub.clock import utcnow
from hub.dispatcher import Dispatcher, DispatchSettings
from hub.errors import TemporaryFailure
from hub.inbound import InboundDesk
from hub.maintenance import Maintenance
from hub.metrics import Metrics
from hub.model import (
    Inbound,
    InboundKind,
    InboundMessage,
    NewInbound,
    NewOutboxItem,
    OutboxItem,
    OutboxStatus,
)
from hub.outbox import OutboxRunner, OutboxSettings
from hub.policies import RetryPolicy
from hub.routing import Router
from hub.spoolcall import SpoolThreads
from spool import SqlSpool, open_spool
from tests.factories import make_account, new_message
from tests.polling import until


class EchoRoute:
    """Routes every reply to one address on the 'test' channel."""

    async def route(self, message: Inbound) -> list[NewOutboxItem]:
        return [NewOutboxItem(str(ULID()), "test", message.account_id, "ops@example.com",
                              inbound_id=message.id)]


@dataclass
class FlakyChannel:
    """Fails each item once, then takes it: the runner must come back for it."""

    name: str = "test"
    delivered: list[OutboxItem] = field(default_factory=list)
    failed_once: set[str] = field(default_factory=set)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def deliver(self, item: OutboxItem) -> None:
        if item.id not in self.failed_once:
            self.failed_once.add(item.id)
            raise TemporaryFailure("relay busy")
        self.delivered.append(item)
        self.arrived.set()


@dataclass
class Parts:
    spool: SqlSpool
    desk: InboundDesk
    carrier: SimulatorCarrier
    channel: FlakyChannel
    outbox: OutboxRunner


@pytest.fixture
async def parts(spool_url: str) -> AsyncIterator[Parts]:
    spool = open_spool(spool_url)
    await asyncio.to_thread(spool.upgrade)
    runner = SpoolThreads(spool)
    channel = FlakyChannel()
    outbox = OutboxRunner(runner, {"test": channel},
                          RetryPolicy(max_attempts=5, base=0.01, cap=0.02),
                          OutboxSettings(poll_interval=0.02))
    desk = InboundDesk(runner, [EchoRoute()], on_routed=outbox.wake)
    carrier = SimulatorCarrier(SimulatorRules(report_delay=0.01))
    dispatcher = Dispatcher(runner, Router({"simulator": carrier}, "simulator"), RetryPolicy(),
                            DispatchSettings(), "n1", Metrics(), inbound=desk)
    await dispatcher.start(claim=False)
    outbox.start()
    yield Parts(spool, desk, carrier, channel, outbox)
    await outbox.stop()
    await dispatcher.stop()
    runner.shutdown()
    spool.close()


async def test_a_reply_is_committed_linked_routed_and_delivered_after_a_retry(
    parts: Parts,
) -> None:
    account = make_account(parts.spool)
    sent = new_message(account, accepted_at=utcnow(), recipient="+27821234567")
    parts.spool.accept([sent])
    await parts.carrier.inject_inbound("+27821234567", "31337", "Yes, confirmed")
    # inject_inbound returned: the reply is already durable.
    [stored] = parts.spool.list_inbound(account.id, None, 10)
    assert stored.kind is InboundKind.REPLY and stored.in_reply_to == sent.id
    await asyncio.wait_for(parts.channel.arrived.wait(), 10)
    [item] = parts.channel.delivered
    assert item.inbound_id == stored.id and item.attempts == 2
    # The runner records the delivery just after the channel returns.
    await until(lambda: getattr(parts.spool.get_outbox(item.id), "status", None)
                is OutboxStatus.SENT)


async def test_an_opt_out_is_recorded_but_never_forwarded(parts: Parts) -> None:
    account = make_account(parts.spool)
    parts.spool.accept([new_message(account, accepted_at=utcnow(), recipient="+27821234567")])
    await parts.carrier.inject_inbound("+27821234567", "31337", "STOP")
    [stored] = parts.spool.list_inbound(account.id, None, 10)
    assert stored.kind is InboundKind.OPT_OUT
    assert parts.spool.unrouted_inbound(10) == []  # routed: to nowhere
    assert await parts.outbox.run_once() == 0 and parts.channel.delivered == []


async def test_inbound_left_unrouted_by_a_crash_is_routed_by_maintenance(
    parts: Parts,
) -> None:
    # Committed by a node that died before routing it.
    parts.spool.store_inbound([NewInbound(str(ULID()), InboundMessage(
        "simulator", "+27821234567", "31337", "hello?", utcnow()), opt_out=False)])
    runner = SpoolThreads(parts.spool)
    try:
        done = await Maintenance(runner, 60, 3600, inbound=parts.desk).run_once()
    finally:
        runner.shutdown()
    assert done["routed"] == 1
    await asyncio.wait_for(parts.channel.arrived.wait(), 10)


async def test_a_reply_that_could_answer_two_accounts_is_unlinked_and_logged_masked(
    parts: Parts, caplog: pytest.LogCaptureFixture
) -> None:
    accounts = [make_account(parts.spool), make_account(parts.spool)]
    parts.spool.accept([new_message(a, accepted_at=utcnow()) for a in accounts])
    [stored] = await parts.desk.receive([InboundMessage(
        "simulator", "+27821234567", "31337", "which one?", utcnow())])
    assert stored.kind is InboundKind.REPLY
    assert (stored.account_id, stored.in_reply_to) == (None, None)
    assert all(parts.spool.list_inbound(a.id, None, 10) == [] for a in accounts)
    [line] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "+27******567" in line and "stored unlinked" in line
    assert "27821234567" not in line and "31337" not in line
    await asyncio.wait_for(parts.channel.arrived.wait(), 10)  # routed: let it settle
    [item] = parts.channel.delivered
    await until(lambda: getattr(parts.spool.get_outbox(item.id), "status", None)
                is OutboxStatus.SENT)
