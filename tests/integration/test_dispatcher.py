"""The dispatcher against a real spool (SQLite and PostgreSQL) and the simulator carrier:
retries, permanent errors, validity, lease recovery, and two dispatchers sharing work."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from adapters.carriers.simulator import SimulatorCarrier, SimulatorRules
from hub.clock import Clock, utcnow
from hub.dispatcher import Dispatcher, DispatchSettings
from hub.errors import TemporaryFailure
from hub.maintenance import Maintenance
from hub.metrics import Metrics
from hub.model import Message, Status, SubmitResult, Transition, UnknownOutcome
from hub.policies import RetryPolicy
from hub.routing import Router
from hub.spoolcall import SpoolThreads
from spool import SqlSpool, open_spool
from tests.factories import make_account, new_message
from tests.polling import until


class CountingSimulator(SimulatorCarrier):
    """The simulator, counting every submission per message id."""

    def __init__(self, rules: SimulatorRules, seen: Counter[str],
                 clock: Clock = utcnow) -> None:
        super().__init__(rules, clock)
        self.seen = seen

    async def submit(self, messages: Sequence[Message]) -> list[SubmitResult]:
        self.seen.update(m.id for m in messages)
        return await super().submit(messages)


@dataclass
class Stack:
    spool: SqlSpool
    runner: SpoolThreads
    dispatcher: Dispatcher
    seen: Counter[str] = field(default_factory=Counter)


async def _stacks(url: str) -> AsyncIterator[Callable[..., Any]]:
    stacks: list[Stack] = []

    async def make(node: str = "n1", policy: RetryPolicy | None = None,
                   seen: Counter[str] | None = None, clock: Clock = utcnow,
                   settings: DispatchSettings | None = None, **rules: Any) -> Stack:
        store = open_spool(url)
        await asyncio.to_thread(store.upgrade)
        runner = SpoolThreads(store)
        counter = seen if seen is not None else Counter()
        # On the dispatcher's clock, as the composition root gives both the same one.
        carrier = CountingSimulator(SimulatorRules(report_delay=0.01, **rules), counter, clock)
        dispatcher = Dispatcher(
            runner, Router({"simulator": carrier}, "simulator"),
            policy or RetryPolicy(max_attempts=3, base=0.01, cap=0.02),
            settings or DispatchSettings(batch_size=100, poll_interval=0.02),
            node, Metrics(), clock=clock,
        )
        stack = Stack(store, runner, dispatcher, counter)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        await stack.dispatcher.stop()
        stack.runner.shutdown()
        stack.spool.close()


@pytest.fixture
async def make_stack(spool_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Dispatcher + simulator + spool on each backend."""
    async for make in _stacks(spool_url):
        yield make


@pytest.fixture
async def make_pg_stack(pg_url: str) -> AsyncIterator[Callable[..., Any]]:
    async for make in _stacks(pg_url):
        yield make


def enqueue(spool: SqlSpool, count: int = 1, **kwargs: Any) -> list[str]:
    account = make_account(spool, credits="1000", price="0.05")
    now = utcnow()
    messages = [new_message(account, accepted_at=now, **kwargs) for _ in range(count)]
    for start in range(0, count, 1000):
        spool.accept(messages[start:start + 1000])
    return [m.id for m in messages]


def status_of(spool: SqlSpool, message_id: str) -> Status:
    message = spool.get_message(message_id)
    assert message is not None
    return message.status


async def test_retries_back_off_and_stop_after_max_attempts(make_stack: Any) -> None:
    stack: Stack = await make_stack(throttled_suffixes=("67",))
    [mid] = enqueue(stack.spool)
    await stack.dispatcher.start()
    await until(lambda: status_of(stack.spool, mid) is Status.FAILED)
    message = stack.spool.get_message(mid)
    assert message is not None and message.attempts == 3
    assert message.error is not None and message.error.code == "retries_exhausted"
    events = stack.spool.events(mid)
    retries = [e for e in events if e.status is Status.QUEUED and "retry at" in e.detail]
    assert len(retries) == 2  # attempt 1 and 2 were retried, attempt 3 gave up
    assert stack.seen[mid] == 3
    account = stack.spool.get_account_by_id(message.account_id)
    assert account.balance == Decimal("1000")  # never reached a handset: refunded


async def test_permanent_error_fails_at_once(make_stack: Any) -> None:
    stack: Stack = await make_stack(rejected_suffixes=("67",))
    [mid] = enqueue(stack.spool)
    await stack.dispatcher.start()
    await until(lambda: status_of(stack.spool, mid) is Status.REJECTED)
    message = stack.spool.get_message(mid)
    assert message is not None and message.attempts == 1 and stack.seen[mid] == 1
    assert message.error is not None and message.error.code == "invalid_destination"
    [rejected] = [e for e in stack.spool.events(mid) if e.status is Status.REJECTED]
    assert rejected.detail == "simulator: destination address rejected"  # named once


def a_minute_later() -> datetime:
    """A clock a minute ahead: past every short validity and lease these tests set,
    without sleeping until they run out."""
    return utcnow() + timedelta(minutes=1)


async def test_message_past_its_validity_expires_instead_of_being_sent(make_stack: Any) -> None:
    stack: Stack = await make_stack(clock=a_minute_later)
    [mid] = enqueue(stack.spool, expires_at=utcnow() + timedelta(seconds=5))
    assert await stack.dispatcher.run_once() == 1
    assert status_of(stack.spool, mid) is Status.EXPIRED
    assert stack.seen[mid] == 0


async def test_maintenance_expires_queued_messages_past_validity(make_stack: Any) -> None:
    stack: Stack = await make_stack()
    [mid] = enqueue(stack.spool, expires_at=utcnow() + timedelta(seconds=5))
    done = await Maintenance(stack.runner, 60, 3600, clock=a_minute_later).run_once()
    assert done["expired"] == 1 and status_of(stack.spool, mid) is Status.EXPIRED


async def test_expired_lease_is_recovered_and_the_stale_holder_cannot_record(
    make_stack: Any,
) -> None:
    stack: Stack = await make_stack(node="n1", clock=a_minute_later)
    [mid] = enqueue(stack.spool)
    # A dispatcher that died: it claimed with a short lease and never came back.
    stale = stack.spool.claim("dead-node", 10, 5, utcnow())
    assert [m.id for m in stale.messages] == [mid]
    upkeep = Maintenance(stack.runner, 60, 3600, clock=a_minute_later)
    assert (await upkeep.run_once())["recovered"] == 1
    await stack.dispatcher.start()
    await until(lambda: status_of(stack.spool, mid) is Status.DELIVERED)
    late = stack.spool.record(stale.token, [Transition(mid, Status.FAILED)], utcnow())
    assert late == [] and status_of(stack.spool, mid) is Status.DELIVERED


async def test_a_restarted_node_releases_what_it_held_at_once(make_stack: Any) -> None:
    stack: Stack = await make_stack(node="n1")
    [mid] = enqueue(stack.spool)
    stack.spool.claim("n1", 10, 3600, utcnow())  # held by this node's previous life
    await stack.dispatcher.start()
    await until(lambda: status_of(stack.spool, mid) is Status.DELIVERED, timeout=5)


async def test_what_a_node_held_when_it_died_fails_as_of_unknown_outcome_under_fail(
    make_stack: Any,
) -> None:
    """[dispatcher] unknown_outcome = "fail" (P7, at most once): the message a node was
    sending when it died is not sent again when the node comes back, nor when another
    node takes its expired lease: each ends failed, outcome_unknown, its history says
    why, and the carrier sees neither again."""
    at_most_once = DispatchSettings(batch_size=100, poll_interval=0.02,
                                    unknown_outcome=UnknownOutcome.FAIL)
    stack: Stack = await make_stack(node="n1", settings=at_most_once, clock=a_minute_later)
    mine, theirs = enqueue(stack.spool, 2)
    stack.spool.claim("n1", 1, 3600, utcnow())  # held by this node's previous life
    stack.spool.claim("dead-node", 1, 5, utcnow())  # another node's, its lease running out
    await stack.dispatcher.start()
    upkeep = Maintenance(stack.runner, 60, 3600, clock=a_minute_later,
                         unknown_outcome=UnknownOutcome.FAIL)
    assert (await upkeep.run_once())["recovered"] == 1
    for mid in (mine, theirs):
        failed = stack.spool.get_message(mid)
        assert failed is not None and failed.status is Status.FAILED
        assert failed.error is not None and failed.error.code == "outcome_unknown"
        assert stack.spool.events(mid)[-1].detail.startswith("outcome unknown: ")
    await asyncio.sleep(0.2)  # a few polls: nothing goes out
    assert stack.seen[mine] == stack.seen[theirs] == 0


async def test_what_a_node_held_when_it_died_is_sent_again_under_resend(
    make_stack: Any,
) -> None:
    stack: Stack = await make_stack(node="n1")
    [mid] = enqueue(stack.spool)
    stack.spool.claim("n1", 10, 3600, utcnow())  # the previous life's attempt 1
    await stack.dispatcher.start()
    await until(lambda: status_of(stack.spool, mid) is Status.DELIVERED, timeout=5)
    delivered = stack.spool.get_message(mid)
    assert delivered is not None and delivered.attempts == 2 and stack.seen[mid] == 1
    assert any(e.detail.startswith("outcome unknown: n1 stopped") and
               e.detail.endswith("sent again") for e in stack.spool.events(mid))


async def test_an_outcome_the_spool_cannot_take_before_the_lease_ends_is_not_sent_again(
    make_stack: Any,
) -> None:
    """The spool refuses writes (a database away) from before the carrier's answer until
    after the claim's lease has ended: the dispatcher keeps the claim and keeps trying,
    upkeep leaves it alone, and once the spool is back the outcome is recorded: the
    message went to the carrier once. (It used to give up at the lease's end and upkeep
    then sent it again.)"""
    stack: Stack = await make_stack(node="n1", settings=DispatchSettings(
        batch_size=100, poll_interval=0.02, lease_seconds=1.0))
    [mid] = enqueue(stack.spool)
    away = [True]
    settle = stack.spool.settle

    def refusing(*args: Any) -> Any:
        if away[0]:
            raise TemporaryFailure("spool unavailable: the database is away", "test", 1)
        return settle(*args)

    stack.spool.settle = refusing  # type: ignore[method-assign]
    await stack.dispatcher.start()
    await until(lambda: stack.seen[mid] == 1)
    await asyncio.sleep(3.0)  # past the lease, and the old give-up after it
    upkeep = Maintenance(stack.runner, 60, 3600, held=stack.dispatcher.held_leases)
    assert (await upkeep.run_once()).get("recovered", 0) == 0
    away[0] = False
    await until(lambda: status_of(stack.spool, mid) is not Status.SENDING, timeout=10)
    assert status_of(stack.spool, mid) in (Status.SUBMITTED, Status.DELIVERED)
    await asyncio.sleep(0.2)
    assert stack.seen[mid] == 1


@pytest.mark.postgres
async def test_two_dispatchers_on_one_postgres_spool_submit_each_message_exactly_once(
    make_pg_stack: Any,
) -> None:
    seen: Counter[str] = Counter()
    first: Stack = await make_pg_stack(node="a", seen=seen)
    second: Stack = await make_pg_stack(node="b", seen=seen)
    ids = await asyncio.to_thread(enqueue, first.spool, 5000)
    await asyncio.gather(first.dispatcher.start(), second.dispatcher.start())

    def all_delivered() -> bool:
        totals = first.spool.totals(utcnow()).by_status
        return totals.get(Status.DELIVERED, 0) == 5000

    await until(all_delivered, timeout=60)
    assert set(seen) == set(ids)
    assert set(seen.values()) == {1}
    per_node = Counter(e.detail.split(" by ")[-1] for mid in ids[:500]
                       for e in first.spool.events(mid) if e.status is Status.SENDING)
    assert per_node["a"] > 0 and per_node["b"] > 0  # both really took part


class ClaimCounter:
    """Wraps a spool's claim: the size of every claim that found work."""

    def __init__(self, spool: SqlSpool) -> None:
        self.sizes: list[int] = []
        self._claim = spool.claim
        spool.claim = self  # type: ignore[method-assign]

    def __call__(self, *args: Any) -> Any:
        claim = self._claim(*args)
        if claim.messages:
            self.sizes.append(len(claim.messages))
        return claim


async def _steady_flow(stack: Stack, groups: int, every: float = 0.005
                       ) -> tuple[list[str], float]:
    """`groups` commits of a few messages each, waking the dispatcher after each one, as
    intake's group commits do under a steady load: the ids and the seconds it took. A
    count, not a duration: on a slow host fewer commits would fit in a fixed time."""
    ids: list[str] = []
    account = make_account(stack.spool, credits="1000", price="0.05")
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(groups):
        group = [new_message(account, accepted_at=utcnow()) for _ in range(3)]
        await asyncio.to_thread(stack.spool.accept, group)
        ids += [m.id for m in group]
        stack.dispatcher.wake()
        await asyncio.sleep(every)
    return ids, loop.time() - started


@pytest.mark.parametrize("gather", [0.1, 0.0])
async def test_a_steady_flow_is_claimed_in_larger_batches_after_a_gather_wait(
    make_stack: Any, gather: float
) -> None:
    stack: Stack = await make_stack(
        settings=DispatchSettings(batch_size=500, poll_interval=1.0, gather=gather))
    claims = ClaimCounter(stack.spool)
    await stack.dispatcher.start()
    groups = 100
    ids, seconds = await _steady_flow(stack, groups)
    await until(lambda: all(status_of(stack.spool, mid) is Status.DELIVERED for mid in ids),
                timeout=20)
    assert sum(claims.sizes) == len(ids)
    if gather:  # about one claim per gather wait (plus the first, at once)
        assert len(claims.sizes) <= seconds / gather + 4, (seconds, claims.sizes)
    else:  # most wake-ups claim what one commit brought
        assert len(claims.sizes) >= groups / 2, claims.sizes


async def test_a_lone_message_is_claimed_at_once_whatever_the_gather_wait(
    make_stack: Any
) -> None:
    stack: Stack = await make_stack(
        settings=DispatchSettings(batch_size=500, poll_interval=5.0, gather=1.0))
    await stack.dispatcher.start()
    await asyncio.sleep(0.1)  # idle: its first (empty) claim is done
    loop = asyncio.get_running_loop()
    for _ in range(2):  # and again, after a claim that found it
        [mid] = enqueue(stack.spool)
        started = loop.time()
        stack.dispatcher.wake()
        await until(lambda mid=mid: stack.seen[mid] == 1, timeout=5)
        assert loop.time() - started < 0.5  # not the poll (5 s), nor a gather wait (1 s)
        await asyncio.sleep(1.2)  # past the gather wait that followed
