"""Items handed in during one turn of the event loop, sent on together when it ends: what
arrives back to back (the answers or receipts of one read from an SMSC) costs one call,
one task and one request to a spool thread, not one each."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerTurn(Generic[T]):
    """`add` items; at the end of the turn `send` gets them all in one list, in a task of
    its own. Each `add` returns the future of that call, shared by the turn's items: its
    result once `send` returned, or `send`'s exception (retrieved here, so no item's
    caller has to wait for it)."""

    def __init__(self, send: Callable[[list[T]], Awaitable[object]], turns: int = 1) -> None:
        self._send = send
        self._turns = turns  # of the loop before `send`: items of a later step may join
        self._items: list[T] = []
        self._sent: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, item: T) -> asyncio.Future[None]:
        sent = self._sent
        if sent is None:
            loop = asyncio.get_running_loop()
            sent = self._sent = loop.create_future()
            loop.call_soon(self._later, sent, self._turns - 1)
        self._items.append(item)
        return sent

    def _later(self, sent: asyncio.Future[None], turns: int) -> None:
        if turns > 0:
            asyncio.get_running_loop().call_soon(self._later, sent, turns - 1)
        elif self._sent is sent:  # not flushed meanwhile
            self.flush()

    def flush(self) -> None:
        """Send what was added so far now, without waiting for the end of the turn."""
        items, sent, self._items, self._sent = self._items, self._sent, [], None
        if sent is None:
            return
        task = asyncio.ensure_future(self._run(items, sent))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait(self) -> None:
        """Until every list sent so far has been handled (failed ones too)."""
        self.flush()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, items: list[T], sent: asyncio.Future[None]) -> None:
        try:
            await self._send(items)
        except asyncio.CancelledError:
            sent.cancel()
            raise
        except Exception as exc:
            sent.set_exception(exc)
            sent.exception()  # retrieved: the items' callers may all have gone
        else:
            sent.set_result(None)
