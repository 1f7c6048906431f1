"""The one seam between the asyncio core and the synchronous spool: spool calls run on a
small thread pool so blocking database work never runs on the event loop. The pool is
typed by the spool role its holder may use (`SpoolThreads[BatchStore]`), so mypy checks
that each part touches only its own tables."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, ParamSpec, TypeVar

from hub.errors import TemporaryFailure

P = ParamSpec("P")
T = TypeVar("T")
Role_co = TypeVar("Role_co", covariant=True)


class SpoolThreads(Generic[Role_co]):
    """Runs spool methods in worker threads: `await runner.call(runner.spool.claim, ...)`.
    A runner over the whole spool is also a runner over any one of its roles."""

    def __init__(self, spool: Role_co, threads: int = 4) -> None:
        self._spool = spool
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="spool")

    @property
    def spool(self) -> Role_co:
        return self._spool

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    def start(self, fn: Callable[[], object]) -> None:
        """Run `fn` on a spool thread without waiting for it (a GroupCommitter's
        drain, which hands its results back itself)."""
        self._pool.submit(fn)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


async def until_written(write: Callable[[], Awaitable[T]],
                        failed: Callable[[TemporaryFailure], None]) -> T:
    """`write` again and again while the spool cannot take it (a database restarting or
    failing over, a full disk), waiting 50 ms, then twice as long each time up to 2 s;
    `failed` hears of each refusal. For what the hub must not lose once it has acted on
    it (a carrier's answer, a delivery made): a lease fences a write that comes too late,
    so trying on costs nothing, where giving up would have the work done again."""
    delay = 0.05
    while True:
        try:
            return await write()
        except TemporaryFailure as exc:
            failed(exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
