"""Group commit: concurrent callers hand in items, a spool thread flushes everything waiting
in a single spool transaction, and each caller gets back only its own results. A group
that fails for a reason other than a temporary one is flushed again caller by caller, so
one caller's bad item fails that caller alone."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Generic, TypeVar

from hub.errors import TemporaryFailure

T = TypeVar("T")
R = TypeVar("R")


_Waiting = list[tuple[list[T], asyncio.Future[list[R]]]]
_Outcome = tuple[asyncio.Future[list[R]], list[R] | BaseException]  # a caller's, to deliver


def _take(waiting: _Waiting[T, R], cap: int) -> tuple[_Waiting[T, R], _Waiting[T, R]]:
    """(the next group, what stays waiting): callers in order up to `cap` items, and
    always at least one caller, even if its batch alone exceeds the cap."""
    taken, count = 0, 0
    for items, _ in waiting:
        if taken and count + len(items) > cap:
            break
        taken += 1
        count += len(items)
    return waiting[:taken], waiting[taken:]


class GroupCommitter(Generic[T, R]):
    """While one flush runs, new items queue up and go together in the next one, so a
    burst of single submissions costs one transaction (one fsync) per group, not per
    item. Flushes run one after another on a spool thread, which takes each group only
    once it has the database's writer's turn (`turn`, where given), then commits it. On
    SQLite another writer (the dispatcher, a split node's other process) often holds the
    database when a group is due: what arrives during that wait joins the group instead
    of waiting for the next one, and the thread goes from one commit to the next without
    a round trip through an event loop busy with requests (single POSTs with the
    dispatcher on: about a sixth more per second; bench/README.md). `flush` is
    synchronous; `start` runs a callable on the spool's threads."""

    def __init__(self, flush: Callable[[list[T]], Sequence[R]], max_items: int,
                 start: Callable[[Callable[[], None]], object],
                 turn: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
                 ) -> None:
        self._flush = flush
        self._max = max_items
        self._start = start
        self._turn = turn
        self._lock = threading.Lock()
        self._waiting: _Waiting[T, R] = []
        self._draining = False

    async def submit(self, items: list[T]) -> list[R]:
        return await self.enqueue(items)

    def enqueue(self, items: list[T]) -> asyncio.Future[list[R]]:
        """`items` queued for the next group; the future of their results, set on the
        running loop once their group is committed. For a caller that waits without a
        task of its own (adapters/http/hot.py); `submit` is this, awaited."""
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        if not items:
            future.set_result([])
            return future
        entry = (items, future)
        with self._lock:
            self._waiting.append(entry)
            start, self._draining = not self._draining, True
        if start:
            try:
                self._start(self._drain)
            except BaseException:  # no thread to flush (shut down): not committed later
                with self._lock:
                    self._draining = False
                    self._waiting = [w for w in self._waiting if w is not entry]
                raise
        return future

    def _drain(self) -> None:
        try:
            while True:
                group: _Waiting[T, R] = []
                settled: list[_Outcome[R]] = []
                try:
                    with self._turn():
                        with self._lock:
                            group, self._waiting = _take(self._waiting, self._max)
                            if not group:
                                self._draining = False
                                return
                        self._flush_group(group, settled)
                finally:  # once the turn is let go: waking the callers is no write
                    if group:
                        _deliver_threadsafe(group, settled)
        except BaseException:
            with self._lock:  # the next submit starts a drain again
                self._draining = False
            raise

    def _flush_group(self, group: _Waiting[T, R], settled: list[_Outcome[R]]) -> None:
        flat = [item for items, _ in group for item in items]
        try:
            results = list(self._flush(flat))
        except TemporaryFailure as exc:
            settled.extend((future, exc) for _, future in group)
            return
        except Exception as exc:
            if len(group) == 1:
                settled.append((group[0][1], exc))
                return
            for items, future in group:  # one member broke it: each on its own
                try:
                    settled.append((future, list(self._flush(items))))
                except Exception as alone:
                    settled.append((future, alone))
            return
        start = 0
        for items, future in group:
            settled.append((future, results[start : start + len(items)]))
            start += len(items)


def _deliver_threadsafe(group: _Waiting[T, R], settled: list[_Outcome[R]]) -> None:
    """Hand a group's outcomes to its callers' loop (one wake-up per loop: there is
    one in practice). A caller with no outcome (the flush itself crashed: a bug) fails
    rather than waits for ever."""
    answered = {id(future) for future, _ in settled}
    settled += [(future, RuntimeError("the group commit failed"))
                for _, future in group if id(future) not in answered]
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome[R]]] = {}
    for outcome in settled:
        by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
    for loop, outcomes in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop closed: no one is waiting
            loop.call_soon_threadsafe(_settle, outcomes)


def _settle(settled: list[_Outcome[R]]) -> None:
    for future, outcome in settled:
        if future.done():  # the caller went away (cancelled): its items are committed
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _fail(group: Sequence[tuple[list[T], asyncio.Future[list[R]]]], exc: Exception) -> None:
    for _, future in group:
        if not future.done():
            future.set_exception(exc)
