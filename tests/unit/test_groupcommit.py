"""Group commit: concurrent callers share flushes and get back their own results."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from hub.errors import TemporaryFailure
from hub.groupcommit import GroupCommitter, ThreadedGroupCommitter


async def test_concurrent_callers_share_one_flush_and_get_their_own_results() -> None:
    flushes: list[list[int]] = []
    gate = asyncio.Event()

    async def flush(items: list[int]) -> list[int]:
        flushes.append(items)
        if len(flushes) == 1:
            await gate.wait()  # hold the first flush while others queue up
        return [i * 10 for i in items]

    committer: GroupCommitter[int, int] = GroupCommitter(flush, max_items=100)
    first = asyncio.create_task(committer.submit([1]))
    await asyncio.sleep(0)
    others = [asyncio.create_task(committer.submit([n, n + 1])) for n in range(2, 12, 2)]
    await asyncio.sleep(0)
    gate.set()
    assert await first == [10]
    assert [await t for t in others] == [[n * 10, (n + 1) * 10] for n in range(2, 12, 2)]
    assert len(flushes) == 2  # five callers, one shared flush


async def test_a_group_never_exceeds_the_cap_but_always_takes_one_caller() -> None:
    sizes: list[int] = []

    async def flush(items: list[int]) -> list[int]:
        sizes.append(len(items))
        await asyncio.sleep(0)
        return items

    committer: GroupCommitter[int, int] = GroupCommitter(flush, max_items=5)
    results = await asyncio.gather(*(committer.submit([i] * 3) for i in range(4)),
                                   committer.submit(list(range(9))))
    assert results[-1] == list(range(9))
    assert max(sizes) == 9 and all(s <= 5 for s in sizes if s != 9)


async def test_a_failed_flush_fails_every_caller_in_its_group_only() -> None:
    calls = 0

    async def flush(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("disk full")
        return items

    committer: GroupCommitter[int, int] = GroupCommitter(flush, max_items=100)
    with pytest.raises(RuntimeError, match="disk full"):
        await committer.submit([1])
    assert await committer.submit([2]) == [2]


async def test_one_callers_bad_item_fails_that_caller_alone() -> None:
    flushes: list[list[int]] = []
    gate = asyncio.Event()

    async def flush(items: list[int]) -> list[int]:
        flushes.append(items)
        if len(flushes) == 1:
            await gate.wait()
        if -1 in items:  # like a driver's encoding error: the whole transaction fails
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return items

    committer: GroupCommitter[int, int] = GroupCommitter(flush, max_items=100)
    first = asyncio.create_task(committer.submit([0]))
    await asyncio.sleep(0)
    good = [asyncio.create_task(committer.submit([n])) for n in range(1, 6)]
    bad = asyncio.create_task(committer.submit([7, -1]))
    await asyncio.sleep(0)
    gate.set()
    assert await first == [0]
    assert [await t for t in good] == [[n] for n in range(1, 6)]
    with pytest.raises(UnicodeEncodeError):
        await bad
    # The shared flush, then each of its six callers again on its own.
    assert flushes[1] == [1, 2, 3, 4, 5, 7, -1] and flushes[2:] == [[1], [2], [3], [4], [5],
                                                                     [7, -1]]


async def test_a_temporary_failure_fails_the_group_without_a_flush_per_caller() -> None:
    flushes: list[list[int]] = []
    gate = asyncio.Event()

    async def flush(items: list[int]) -> list[int]:
        flushes.append(items)
        if len(flushes) == 1:
            await gate.wait()
            return items
        raise TemporaryFailure("spool unavailable: database is locked")

    committer: GroupCommitter[int, int] = GroupCommitter(flush, max_items=100)
    first = asyncio.create_task(committer.submit([0]))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(committer.submit([n])) for n in range(1, 4)]
    await asyncio.sleep(0)
    gate.set()
    await first
    for task in waiting:
        with pytest.raises(TemporaryFailure):
            await task
    assert len(flushes) == 2


# --- ThreadedGroupCommitter: flushes on a spool thread, each group taken in its turn ---


class _Spool:
    """Threads to flush on and a writer's turn that the test can hold, as another
    writer (the dispatcher) holds the database."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=4)
        self.turn_lock = threading.RLock()
        self.flushes: list[list[int]] = []

    def start(self, fn: Callable[[], None]) -> None:
        self.pool.submit(fn)

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        with self.turn_lock:
            yield


async def _until(predicate: Callable[[], bool]) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


async def test_threaded_callers_arriving_while_another_writer_holds_the_turn_share_a_flush(
) -> None:
    spool = _Spool()

    def flush(items: list[int]) -> list[int]:
        assert spool.turn_lock._is_owned()  # type: ignore[attr-defined]
        spool.flushes.append(items)
        return [i * 10 for i in items]

    committer: ThreadedGroupCommitter[int, int] = ThreadedGroupCommitter(
        flush, 100, spool.start, spool.turn)
    spool.turn_lock.acquire()  # another writer's transaction
    try:
        tasks = [asyncio.create_task(committer.submit([n, n + 1])) for n in range(0, 10, 2)]
        await asyncio.sleep(0.05)
        assert spool.flushes == []  # the group waits for the turn, not taken before it
    finally:
        spool.turn_lock.release()
    assert [await t for t in tasks] == [[n * 10, (n + 1) * 10] for n in range(0, 10, 2)]
    # Taken once the turn came: every caller that arrived meanwhile, in one flush.
    assert spool.flushes == [list(range(10))]
    assert await committer.submit([7]) == [70]
    spool.pool.shutdown()


async def test_threaded_one_callers_bad_item_fails_that_caller_alone() -> None:
    spool = _Spool()

    def flush(items: list[int]) -> list[int]:
        spool.flushes.append(items)
        if -1 in items:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return items

    committer: ThreadedGroupCommitter[int, int] = ThreadedGroupCommitter(
        flush, 100, spool.start, spool.turn)
    with spool.turn_lock:
        good = [asyncio.create_task(committer.submit([n])) for n in range(1, 4)]
        bad = asyncio.create_task(committer.submit([7, -1]))
        await asyncio.sleep(0.02)
    assert [await t for t in good] == [[1], [2], [3]]
    with pytest.raises(UnicodeEncodeError):
        await bad
    assert spool.flushes == [[1, 2, 3, 7, -1], [1], [2], [3], [7, -1]]
    spool.pool.shutdown()


async def test_threaded_a_temporary_failure_fails_the_group_and_the_next_flush_goes_on(
) -> None:
    spool = _Spool()
    failing = True

    def flush(items: list[int]) -> list[int]:
        spool.flushes.append(items)
        if failing:
            raise TemporaryFailure("spool unavailable: database is locked")
        return items

    committer: ThreadedGroupCommitter[int, int] = ThreadedGroupCommitter(
        flush, 100, spool.start, spool.turn)
    with spool.turn_lock:
        tasks = [asyncio.create_task(committer.submit([n])) for n in range(3)]
        await asyncio.sleep(0.02)
    for task in tasks:
        with pytest.raises(TemporaryFailure):
            await task
    assert spool.flushes == [[0, 1, 2]]  # not retried caller by caller
    failing = False
    assert await committer.submit([5]) == [5]
    spool.pool.shutdown()


async def test_threaded_a_cancelled_caller_leaves_the_others_their_results() -> None:
    spool = _Spool()
    committer: ThreadedGroupCommitter[int, int] = ThreadedGroupCommitter(
        lambda items: spool.flushes.append(items) or items, 100, spool.start, spool.turn)
    with spool.turn_lock:
        gone = asyncio.create_task(committer.submit([1]))
        stays = asyncio.create_task(committer.submit([2]))
        await asyncio.sleep(0.02)
        gone.cancel()
    assert await stays == [2]
    await _until(gone.done)
    assert gone.cancelled() and spool.flushes == [[1, 2]]  # committed all the same
    spool.pool.shutdown()


async def test_threaded_no_thread_to_flush_on_fails_the_caller_and_commits_nothing() -> None:
    spool = _Spool()
    spool.pool.shutdown()
    committer: ThreadedGroupCommitter[int, int] = ThreadedGroupCommitter(
        lambda items: spool.flushes.append(items) or items, 100, spool.start, spool.turn)
    with pytest.raises(RuntimeError, match="shutdown"):
        await committer.submit([1])
    spool.pool = ThreadPoolExecutor(max_workers=1)
    assert await committer.submit([2]) == [2]
    assert spool.flushes == [[2]]  # the refused caller's item was not flushed later
    spool.pool.shutdown()
