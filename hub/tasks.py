"""Background tasks of long-running services: stopping one means cancelling it and
waiting until it has really finished, so nothing runs on after its service stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def cancel_all(tasks: Iterable[asyncio.Task[Any] | None]) -> None:
    """Cancel the given tasks (None entries are skipped) and wait for every one."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
