"""The one seam between the asyncio core and the synchronous spool: spool calls run on a
small thread pool so blocking database work never runs on the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from hub.ports import Spool

P = ParamSpec("P")
T = TypeVar("T")


class SpoolRunner:
    """Runs spool methods in worker threads: `await runner.call(spool.claim, ...)`."""

    def __init__(self, spool: Spool, threads: int = 4) -> None:
        self.spool = spool
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="spool")

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
