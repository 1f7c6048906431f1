"""Group commit: concurrent callers hand in items, one leader flushes everything waiting
in a single spool transaction, and each caller gets back only its own results. A group
that fails for a reason other than a temporary one is flushed again caller by caller, so
one caller's bad item fails that caller alone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from hub.errors import TemporaryFailure

T = TypeVar("T")
R = TypeVar("R")


class GroupCommitter(Generic[T, R]):
    """While one flush runs, new items queue up and go together in the next one, so a
    burst of single submissions costs one transaction (one fsync) per group, not per item.
    """

    def __init__(
        self, flush: Callable[[list[T]], Awaitable[Sequence[R]]], max_items: int
    ) -> None:
        self._flush = flush
        self._max = max_items
        self._waiting: list[tuple[list[T], asyncio.Future[list[R]]]] = []
        self._leader: asyncio.Task[None] | None = None

    async def submit(self, items: list[T]) -> list[R]:
        if not items:
            return []
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._waiting.append((items, future))
        if self._leader is None:
            self._leader = asyncio.create_task(self._lead())
        return await future

    async def _lead(self) -> None:
        try:
            while self._waiting:
                await self._flush_one_group()
        finally:
            self._leader = None

    async def _flush_one_group(self) -> None:
        group = self._take_group()
        flat = [item for items, _ in group for item in items]
        try:
            results = list(await self._flush(flat))
        except TemporaryFailure as exc:  # the spool itself: every caller sees it
            _fail(group, exc)
            return
        except Exception as exc:
            if len(group) == 1:
                _fail(group, exc)
                return
            # One member's item broke the shared transaction (rolled back whole): the
            # others must not pay for it, so each caller is flushed on its own.
            for member in group:
                await self._flush_alone(*member)
            return
        start = 0
        for items, future in group:
            if not future.done():
                future.set_result(results[start : start + len(items)])
            start += len(items)

    async def _flush_alone(self, items: list[T], future: asyncio.Future[list[R]]) -> None:
        try:
            results = list(await self._flush(items))
        except Exception as exc:
            _fail([(items, future)], exc)
            return
        if not future.done():
            future.set_result(results)

    def _take_group(self) -> list[tuple[list[T], asyncio.Future[list[R]]]]:
        taken, count = 0, 0
        # Always take at least one caller, even if its batch alone exceeds the cap.
        for items, _ in self._waiting:
            if taken and count + len(items) > self._max:
                break
            taken += 1
            count += len(items)
        group, self._waiting = self._waiting[:taken], self._waiting[taken:]
        return group


def _fail(group: Sequence[tuple[list[T], asyncio.Future[list[R]]]], exc: Exception) -> None:
    for _, future in group:
        if not future.done():
            future.set_exception(exc)
