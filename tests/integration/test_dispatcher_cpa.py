"""The dispatcher under a fake clock and CPA regulation 4 (issue #15), on SQLite and
PostgreSQL: marketing due at 19:59 and claimed at 20:00 never reaches the carrier and
waits for Saturday 09:00; at 09:00 it goes; transactional messages go at any hour."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.carriers.simulator import SimulatorCarrier, SimulatorRules
from hub import cpa
from hub.consents import Consent
from hub.dispatcher import Dispatcher, DispatchSettings
from hub.errors import TemporaryFailure
from hub.metrics import Metrics
from hub.model import Message, MessageClass, Status, SubmitResult, Verdict
from hub.policies import RetryPolicy
from hub.routing import Router
from hub.spoolcall import SpoolThreads
from spool import open_spool
from tests.factories import make_account, new_message
from tests.integration.test_dispatcher import Stack, make_stack
from tests.polling import until

_ = make_stack  # the fixture, shared with test_dispatcher.py


def sa(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=cpa.ZONE).astimezone(UTC)


async def test_claimed_after_closing_waits_and_goes_when_the_hours_open(
    make_stack: Any,
) -> None:
    now = [sa("2026-12-04T20:00")]
    stack: Stack = await make_stack(clock=lambda: now[0])
    account = make_account(stack.spool, credits="100")
    accepted = sa("2026-12-04T19:00")
    due = sa("2026-12-04T19:59")
    promo = replace(new_message(account, accepted_at=accepted, due_in=3540),
                    message_class=MessageClass.MARKETING)
    receipt = new_message(account, accepted_at=accepted, due_in=3540)
    assert promo.due_at == due
    stack.spool.accept([promo, receipt])
    assert await stack.dispatcher.run_once() == 1  # only the transactional one
    assert stack.seen[receipt.id] == 1 and stack.seen[promo.id] == 0
    held = stack.spool.get_message(promo.id)
    assert held is not None and held.status is Status.SCHEDULED
    assert held.due_at == sa("2026-12-05T09:00") and held.attempts == 0
    now[0] = sa("2026-12-05T08:59")
    assert await stack.dispatcher.run_once() == 0
    now[0] = sa("2026-12-05T09:00")
    assert await stack.dispatcher.run_once() == 1
    assert stack.seen[promo.id] == 1
    sent = stack.spool.get_message(promo.id)
    assert sent is not None and sent.status is Status.SUBMITTED and sent.error is None


async def test_a_consent_sends_the_held_messages_at_once_in_their_order(
    make_stack: Any,
) -> None:
    now = [sa("2026-12-04T20:30")]  # Friday evening: closed until Saturday 09:00
    stack: Stack = await make_stack(clock=lambda: now[0])
    account = make_account(stack.spool, credits="100")
    accepted = sa("2026-12-04T19:00")
    promos = [replace(new_message(account, accepted_at=accepted, due_in=3540),
                      message_class=MessageClass.MARKETING) for _ in range(3)]
    other = replace(new_message(account, accepted_at=accepted, due_in=3540,
                                recipient="+27831234567"), message_class=MessageClass.MARKETING)
    stack.spool.accept([*promos, other])
    await stack.dispatcher.start()
    await until(lambda: all(stack.spool.get_message(m.id).error is not None  # type: ignore[union-attr]
                            for m in [*promos, other]))
    assert not stack.seen  # all four held by the running dispatcher's claim
    _, _, released = stack.spool.add_consent(Consent(account.id, "+27821234567", now[0]))
    assert released == 3
    await until(lambda: all(stack.seen[m.id] for m in promos))
    assert list(stack.seen) == [m.id for m in promos]  # their original order
    held = stack.spool.get_message(other.id)
    assert held is not None and held.status is Status.SCHEDULED  # no consent: still held
    for m in promos:
        events = stack.spool.events(m.id)
        assert any("released" in e.detail for e in events)


@pytest.mark.parametrize(("due", "claimed", "opens"), [
    ("2026-12-05T12:58", "2026-12-05T12:59", None),  # Saturday 12:59: sent
    ("2026-12-05T12:59", "2026-12-05T13:00", "2026-12-07T08:00"),  # 13:00: Monday
    ("2026-12-04T19:58", "2026-12-04T19:59", None),  # Friday 19:59: sent
    ("2026-04-24T19:00", "2026-04-27T10:00", "2026-04-28T08:00"),  # Freedom Day (Monday)
    ("2026-04-28T07:59", "2026-04-28T08:00", None),  # the day after: held at intake to 08:00
])
async def test_each_boundary_under_the_dispatchers_fake_clock(
    make_stack: Any, due: str, claimed: str, opens: str | None,
) -> None:
    now = [sa(claimed)]
    stack: Stack = await make_stack(clock=lambda: now[0])
    account = make_account(stack.spool, credits="100")
    accepted = sa(due)
    promo = replace(new_message(account, accepted_at=accepted),
                    message_class=MessageClass.MARKETING)
    stack.spool.accept([promo])
    assert await stack.dispatcher.run_once() == (1 if opens is None else 0)
    m = stack.spool.get_message(promo.id)
    assert m is not None
    if opens is None:
        assert stack.seen[promo.id] == 1 and m.status is Status.SUBMITTED
        return
    assert stack.seen[promo.id] == 0 and m.status is Status.SCHEDULED
    assert m.due_at == sa(opens) and m.error is not None and m.error.code == cpa.HELD
    now[0] = sa(opens) - timedelta(minutes=1)
    assert await stack.dispatcher.run_once() == 0
    now[0] = sa(opens)
    assert await stack.dispatcher.run_once() == 1 and stack.seen[promo.id] == 1


class OneASecond(SimulatorCarrier):
    """A carrier that takes one message a second (its rate limit, say), on the test's
    clock: the time passes before each message is answered."""

    def __init__(self, now: list[datetime]) -> None:
        super().__init__(SimulatorRules(report_delay=0.01), clock=lambda: now[0])
        self.now = now
        self.sent: list[str] = []

    def _answer(self, message: Message) -> SubmitResult:
        self.now[0] += timedelta(seconds=1)
        result = super()._answer(message)
        if result.verdict is Verdict.SUBMITTED:
            self.sent.append(message.id)
        return result


@pytest.mark.parametrize("spool_away", [False, True])
async def test_marketing_still_waiting_at_the_carrier_when_the_hours_close_is_held(
    spool_url: str, spool_away: bool,
) -> None:
    """Claimed at 19:59:57.5 on a Friday, five marketing messages reach a carrier that
    sends one a second: two go before 20:00, three do not and wait for Saturday 09:00
    (the attempt not counted); a transactional message after them goes all the same.
    With `spool_away`, the spool refuses the hold twice first: it is written when the
    spool takes it, not left to the lease (which would bring the messages back as of
    unknown outcome)."""
    now = [sa("2026-12-04T19:59:57.5")]
    store = open_spool(spool_url)
    await asyncio.to_thread(store.upgrade)
    runner = SpoolThreads(store)
    carrier = OneASecond(now)
    dispatcher = Dispatcher(
        runner, Router({"simulator": carrier}, "simulator"), RetryPolicy(max_attempts=3),
        DispatchSettings(batch_size=100, poll_interval=0.02), "n1", Metrics(),
        clock=lambda: now[0])
    try:
        account = make_account(store, credits="100")
        accepted = sa("2026-12-04T19:00")
        promos = [replace(new_message(account, accepted_at=accepted,
                                      recipient=f"+2782123456{n}"),
                          message_class=MessageClass.MARKETING) for n in range(5)]
        plain = new_message(account, accepted_at=accepted, recipient="+27831234567")
        store.accept([*promos, plain])
        if spool_away:
            hold, refusals = store.hold_unsent, [2]

            def refusing(*args: Any) -> Any:
                if refusals[0]:
                    refusals[0] -= 1
                    raise TemporaryFailure("spool unavailable", "test", 1)
                return hold(*args)

            store.hold_unsent = refusing  # type: ignore[method-assign]
        assert await dispatcher.run_once() == 6
        assert carrier.sent == [promos[0].id, promos[1].id, plain.id]
        for m in promos[:2]:
            assert store.get_message(m.id).status is Status.SUBMITTED  # type: ignore[union-attr]
        for m in promos[2:]:
            held = store.get_message(m.id)
            assert held is not None and held.status is Status.SCHEDULED
            assert (held.due_at, held.attempts) == (sa("2026-12-05T09:00"), 0)
            assert held.error is not None and held.error.code == cpa.HELD
        now[0] = sa("2026-12-05T09:00")
        assert await dispatcher.run_once() == 3
        assert carrier.sent[3:] == [m.id for m in promos[2:]]  # in their order
    finally:
        await dispatcher.stop()
        runner.shutdown()
        store.close()
