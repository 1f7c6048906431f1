"""Receipts that always settle, on SQLite and PostgreSQL: upkeep fails a message whose
delivery report never came at its carrier's receipt timeout (on a clock the test moves),
asks a carrier that can answer first, and the simulator sends after a restart the
reports it owed before it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from adapters.carriers import simulator
from adapters.carriers.simulator import SimulatorCarrier, SimulatorRules
from hub.clock import utcnow
from hub.dispatcher import Dispatcher, DispatchSettings
from hub.maintenance import Maintenance
from hub.metrics import Metrics
from hub.model import DeliveryReport, Message, Status, SubmitResult, Verdict
from hub.policies import ReceiptTimeout, RetryPolicy
from hub.ports import Carrier, CarrierSink
from hub.routing import Router
from hub.spoolcall import SpoolThreads
from spool import SqlSpool, open_spool
from tests.factories import make_account, new_message
from tests.hubthread import HubThread
from tests.integration.conftest import test_config as hub_config
from tests.polling import eventually


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def at(self, start: datetime, seconds: float) -> None:
        self.now = start + timedelta(seconds=seconds)


class SilentSmsc:
    """A carrier that takes every message and never sends a delivery report."""

    name = "silent"

    async def start(self, sink: CarrierSink) -> None:
        self.sink = sink

    async def stop(self) -> None:
        pass

    async def submit(self, messages: Sequence[Message]) -> list[SubmitResult]:
        return [SubmitResult(m.id, Verdict.SUBMITTED, carrier_message_id=f"s-{m.id}")
                for m in messages]


@dataclass
class Stack:
    spool: SqlSpool
    runner: SpoolThreads[SqlSpool]
    dispatcher: Dispatcher
    clock: Clock

    def upkeep(self, receipts: dict[str, ReceiptTimeout]) -> Maintenance:
        return Maintenance(self.runner, 60, 86_400, clock=self.clock, receipts=receipts,
                           carriers=self.dispatcher.carriers)

    async def submit(self, *recipients: str, expires_in: float | None = None) -> list[str]:
        """Accept messages now and have the dispatcher hand them to the carrier."""
        account = make_account(self.spool, credits="10", price="0.25")
        now = self.clock()
        expires_at = None if expires_in is None else now + timedelta(seconds=expires_in)
        made = [new_message(account, accepted_at=now, cost="0.25", recipient=r,
                            expires_at=expires_at) for r in recipients]
        self.spool.accept(made)
        assert await self.dispatcher.run_once() == len(made)
        assert {self.status(m.id) for m in made} == {Status.SUBMITTED}
        return [m.id for m in made]

    def status(self, message_id: str) -> Status:
        found = self.spool.get_message(message_id)
        assert found is not None
        return found.status


@pytest.fixture
async def make_stack(spool_url: str) -> AsyncIterator[object]:
    made: list[Stack] = []

    async def make(carrier: Carrier) -> Stack:
        store = open_spool(spool_url)
        await asyncio.to_thread(store.upgrade)
        runner = SpoolThreads(store)
        clock = Clock()
        dispatcher = Dispatcher(runner, Router({carrier.name: carrier}, carrier.name),
                                RetryPolicy(), DispatchSettings(), "n1", Metrics(), clock=clock)
        await dispatcher.start(claim=False)
        made.append(Stack(store, runner, dispatcher, clock))
        return made[-1]

    yield make
    for stack in made:
        await stack.dispatcher.stop()
        stack.runner.shutdown()
        stack.spool.close()


async def test_no_report_fails_the_message_at_the_timeout_charged_and_audited(
    make_stack: object,
) -> None:
    stack: Stack = await make_stack(SilentSmsc())  # type: ignore[operator]
    start = stack.clock()
    [mid] = await stack.submit("+27821234567")
    upkeep = stack.upkeep({"silent": ReceiptTimeout(timeout=600)})
    stack.clock.at(start, 599)
    assert (await upkeep.run_once()).get("no_report", 0) == 0
    assert stack.status(mid) is Status.SUBMITTED
    stack.clock.at(start, 600)
    assert (await upkeep.run_once())["no_report"] == 1
    message = stack.spool.get_message(mid)
    assert message is not None and message.status is Status.FAILED
    assert message.error is not None and message.error.code == "no_delivery_report"
    assert "no delivery report" in message.error.text
    assert [(e.status, e.detail.startswith("no delivery report"))
            for e in stack.spool.events(mid)][-2:] == [(Status.SUBMITTED, False),
                                                      (Status.FAILED, True)]
    assert stack.spool.get_account_by_id(message.account_id).balance == Decimal("9.75")
    # The real report turns up after all, through the carriers' one report path: ignored.
    trail = stack.spool.events(mid)
    await stack.dispatcher.report([DeliveryReport("silent", f"s-{mid}", Status.DELIVERED,
                                                  stack.clock(), detail="DELIVRD")])
    assert stack.status(mid) is Status.FAILED and stack.spool.events(mid) == trail
    assert (await upkeep.run_once()).get("no_report", 0) == 0  # idempotent


async def test_a_carrier_without_settings_waits_for_validity_plus_the_default_margin(
    make_stack: object,
) -> None:
    stack: Stack = await make_stack(SilentSmsc())  # type: ignore[operator]
    start = stack.clock()
    [mid] = await stack.submit("+27821234567", expires_in=7200)
    upkeep = stack.upkeep({})  # nothing said for "silent": the default rule
    stack.clock.at(start, 7200 + 3599)
    assert (await upkeep.run_once()).get("no_report", 0) == 0
    stack.clock.at(start, 7200 + 3600)
    assert (await upkeep.run_once())["no_report"] == 1
    assert stack.status(mid) is Status.FAILED


async def test_upkeep_asks_a_carrier_that_can_answer_before_timing_out(
    make_stack: object,
) -> None:
    # The simulator's own reports would come in an hour; its answer to a query is at once.
    sim = SimulatorCarrier(SimulatorRules(report_delay=3600, undelivered_suffixes=("13",)))
    stack: Stack = await make_stack(sim)  # type: ignore[operator]
    start = stack.clock()
    ok, absent = await stack.submit("+27821234567", "+27821234513")
    upkeep = stack.upkeep({"simulator": ReceiptTimeout(timeout=600)})
    stack.clock.at(start, 600)
    assert (await upkeep.run_once()).get("no_report", 0) == 0
    assert (stack.status(ok), stack.status(absent)) == (Status.DELIVERED, Status.UNDELIVERED)
    assert stack.spool.events(ok)[-1].detail == "DELIVRD"


# --- the simulator across a restart ----------------------------------------------------


def statuses(hub: HubThread, ids: list[str]) -> dict[str, Status]:
    found = {mid: hub.spool.get_message(mid) for mid in ids}
    return {mid: m.status for mid, m in found.items() if m is not None}


def test_a_restarted_hub_gets_the_reports_its_simulator_owed(
    tmp_path: Path, hubs: list[HubThread], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(simulator, "OWED_PAGE", 7)  # several pages for a few messages
    data = tmp_path / "hub"
    rules = {"undelivered_suffixes": ["13"]}
    # First life: its reports would come in an hour, so it stops owing them all.
    first = HubThread(hub_config(data, simulator={**rules, "report_delay": 3600})).start()
    hubs.append(first)
    key = first.account("acme", credits="100")
    recipients = [f"+278212345{n:02d}" for n in range(20)] + ["+27821234513"] * 3
    batch = {"messages": [{"to": to, "text": "hi"} for to in recipients]}
    posted = httpx.post(f"{first.url}/v1/messages", json=batch,
                        headers={"Authorization": f"Bearer {key}"})
    ids = [r["id"] for r in posted.json()["results"]]
    eventually(lambda: set(statuses(first, ids).values()) == {Status.SUBMITTED},
               what="every message submitted")
    first.stop()
    second = HubThread(hub_config(data, simulator={**rules, "report_delay": 0.05})).start()
    hubs.append(second)
    expected = {mid: Status.UNDELIVERED if to.endswith("13") else Status.DELIVERED
                for mid, to in zip(ids, recipients, strict=True)}
    eventually(lambda: statuses(second, ids) == expected, what="every owed report applied")
    assert [e.status for e in second.spool.events(ids[0])] == [
        Status.ACCEPTED, Status.SENDING, Status.SUBMITTED, Status.DELIVERED]
