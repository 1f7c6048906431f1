"""The SMPP carrier through the real dispatcher and spool, against smpp34's SMSC (one we
did not write): submit, long messages in parts, receipts matched through the spool, and
failover to the next carrier when a carrier has no bind."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import smpp34

from adapters.carriers.simulator import SimulatorCarrier, SimulatorRules
from adapters.carriers.smpp.carrier import SmppCarrier
from adapters.carriers.smpp.config import SmppSettings
from hub import cpa
from hub.clock import Clock, utcnow
from hub.dispatcher import Dispatcher, DispatchSettings
from hub.metrics import Metrics
from hub.model import MessageClass, Status
from hub.policies import RetryPolicy
from hub.ports import Carrier
from hub.routing import Router, is_up
from hub.spoolcall import SpoolThreads
from spool import SqlSpool, open_spool
from tests.factories import make_account, new_message
from tests.polling import until

pytestmark = pytest.mark.keeps_process_fds  # smpp34's runtime keeps its own descriptors


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Smsc:
    """smpp34.Server answering every submit_sm with a zero-padded decimal id and, when
    asked, a receipt with the id in the text only (so the carrier's parsing is used)."""
    port: int
    server: Any
    submits: list[Any] = field(default_factory=list)
    esmes: list[Any] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    receipt_stat: str = "DELIVRD"
    pushes: set[asyncio.Future[Any]] = field(default_factory=set)

    async def serve(self) -> None:
        while True:
            event = await self.server.next()
            if isinstance(event, smpp34.Esme):
                self.esmes.append(event)
            elif isinstance(event, smpp34.SubmitSmEvent):
                self.submits.append(event)
                smsc_id = f"{len(self.submits):010d}"
                event.accept(smsc_id)
                if event.registered_delivery and self.esmes:
                    text = (f"id:{smsc_id} sub:001 dlvrd:001 submit date:2512011200 "
                            f"done date:2512011201 stat:{self.receipt_stat} err:000 text:")
                    push = asyncio.ensure_future(self.esmes[-1].deliver_sm(
                        event.source_addr, text.encode(), source_addr=event.destination_addr,
                        esm_class=0x04))
                    self.pushes.add(push)
                    push.add_done_callback(self.pushes.discard)


@pytest.fixture
async def smsc() -> AsyncIterator[Smsc]:
    port = free_port()
    server = smpp34.Server("127.0.0.1", port)
    await server.start()
    running = Smsc(port, server)
    running.task = asyncio.create_task(running.serve())
    yield running
    running.task.cancel()
    await asyncio.gather(running.task, return_exceptions=True)
    await server.stop()


@dataclass
class Stack:
    spool: SqlSpool
    runner: SpoolThreads[Any]
    dispatcher: Dispatcher


@pytest.fixture
async def stack(spool_url: str) -> AsyncIterator[Any]:
    made: list[Stack] = []

    async def make(carriers: dict[str, Carrier], default: str,
                   failover: tuple[str, ...] = (), clock: Clock = utcnow) -> Stack:
        store = open_spool(spool_url)
        await asyncio.to_thread(store.upgrade)
        runner = SpoolThreads(store)
        dispatcher = Dispatcher(
            runner, Router(carriers, default, failover),
            RetryPolicy(max_attempts=3, base=0.01, cap=0.02),
            DispatchSettings(batch_size=200, poll_interval=0.02),
            "n1", Metrics(), clock=clock)
        made.append(Stack(store, runner, dispatcher))
        return made[-1]

    yield make
    for s in made:
        await s.dispatcher.stop()
        s.runner.shutdown()
        s.spool.close()


def smpp(port: int, clock: Clock = utcnow, **overrides: Any) -> SmppCarrier:
    settings = SmppSettings(port=port, system_id="hub", password="secret",
                            enquire_link_interval=5, reconnect_min=0.05,
                            reconnect_max=0.2, **overrides)
    return SmppCarrier("smsc", settings, clock=clock)


def statuses(spool: SqlSpool, ids: list[str]) -> set[Status]:
    return {spool.get_message(i).status for i in ids}  # type: ignore[union-attr]


async def test_messages_go_out_over_smpp_and_receipts_finish_them(
    smsc: Smsc, stack: Any,
) -> None:
    carrier = smpp(smsc.port)
    s: Stack = await stack({"smsc": carrier}, "smsc")
    account = make_account(s.spool, credits="1000", price="0.05")
    short = [new_message(account, text=f"hello {i}", accepted_at=utcnow()) for i in range(50)]
    # 403 UCS-2 units: 7 parts of 67
    long_ucs2 = new_message(account, text="Привет, мир! " * 31, accepted_at=utcnow())
    s.spool.accept([*short, long_ucs2])
    await s.dispatcher.start()
    ids = [m.id for m in [*short, long_ucs2]]
    await until(lambda: statuses(s.spool, ids) == {Status.DELIVERED}, timeout=20)
    assert len(smsc.submits) == 50 + 7
    parts = [e for e in smsc.submits if e.esm_class & 0x40]
    assert len(parts) == 7 and {e.data_coding for e in parts} == {8}
    stored = s.spool.get_message(long_ucs2.id)
    assert stored is not None and stored.carrier == "smsc"
    # Each part's receipt was matched through the spool; the last one finished it.
    assert s.spool.events(long_ucs2.id)[-1].detail == "all 7 parts reported: delivered"
    # The SMSC's zero-padded ids are stored normalised, as receipts are matched.
    assert stored.carrier_message_id is not None
    assert not stored.carrier_message_id.startswith("0")


async def test_undeliverable_receipts_fail_the_message_with_the_smsc_reason(
    smsc: Smsc, stack: Any,
) -> None:
    smsc.receipt_stat = "UNDELIV"
    s: Stack = await stack({"smsc": smpp(smsc.port)}, "smsc")
    account = make_account(s.spool, credits="1000", price="0.05")
    msg = new_message(account, accepted_at=utcnow())
    s.spool.accept([msg])
    await s.dispatcher.start()
    await until(lambda: statuses(s.spool, [msg.id]) == {Status.UNDELIVERED}, timeout=10)


async def test_a_carrier_with_no_bind_passes_its_messages_to_the_next_carrier(
    stack: Any,
) -> None:
    down = smpp(free_port())  # nothing listens there: it never binds
    sim = SimulatorCarrier(SimulatorRules(report_delay=0.01))
    s: Stack = await stack({"smsc": down, "simulator": sim}, "smsc", ("simulator",))
    account = make_account(s.spool, credits="1000", price="0.05")
    messages = [new_message(account, accepted_at=utcnow()) for _ in range(5)]
    s.spool.accept(messages)
    await s.dispatcher.start()
    ids = [m.id for m in messages]
    await until(lambda: statuses(s.spool, ids) == {Status.DELIVERED}, timeout=10)
    assert {s.spool.get_message(i).carrier for i in ids} == {"simulator"}  # type: ignore[union-attr]


async def test_marketing_the_rate_limit_holds_past_closing_time_is_not_sent(
    smsc: Smsc, stack: Any,
) -> None:
    """CPA regulation 4 at the carrier: six marketing messages claimed at 19:59:58.5 on a
    Friday, two a second by the carrier's rate limit, on a clock that runs from there.
    Those whose turn comes at 20:00 or later never reach the SMSC and wait for Saturday
    09:00; those sent before are submitted."""
    started = [time.monotonic()]  # the clock starts again once the bind is up
    base = datetime(2026, 12, 4, 19, 59, 58, 500_000, tzinfo=cpa.ZONE).astimezone(UTC)

    def clock() -> datetime:
        return base + timedelta(seconds=time.monotonic() - started[0])

    carrier = smpp(smsc.port, clock, rate=2.0)
    s: Stack = await stack({"smsc": carrier}, "smsc", clock=clock)
    account = make_account(s.spool, credits="1000", price="0.05")
    accepted = base - timedelta(minutes=5)
    promos = [replace(new_message(account, accepted_at=accepted, recipient=f"+2782123456{n}"),
                      message_class=MessageClass.MARKETING) for n in range(6)]
    s.spool.accept(promos)
    await carrier.start(s.dispatcher)
    await until(lambda: is_up(carrier), timeout=10)
    started[0] = time.monotonic()
    assert await s.dispatcher.run_once() == 6
    sent = [m for m in promos if s.spool.get_message(m.id).status  # type: ignore[union-attr]
            in (Status.SUBMITTED, Status.DELIVERED)]
    held = [s.spool.get_message(m.id) for m in promos if m not in sent]
    assert sent and held  # the boundary fell inside the batch
    assert len(smsc.submits) == len(sent)  # the held ones never reached the SMSC
    assert {e.destination_addr for e in smsc.submits} == {m.recipient[1:] for m in sent}
    saturday = datetime(2026, 12, 5, 9, 0, tzinfo=cpa.ZONE).astimezone(UTC)
    for m in held:
        assert m is not None and m.status is Status.SCHEDULED and m.due_at == saturday
        assert m.error is not None and m.error.code == cpa.HELD and m.attempts == 0
