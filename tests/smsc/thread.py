"""The scripted SMSC on its own event loop and thread, as an SMSC is its own process:
for tests whose hub runs on another loop or in another process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from tests.smsc.scripted import ScriptedSmsc

S = TypeVar("S", bound=ScriptedSmsc)


@contextmanager
def smsc_in_thread(kind: type[S] = ScriptedSmsc,  # type: ignore[assignment]
                   **knobs: Any) -> Iterator[S]:
    """A started SMSC of class `kind` (the scripted one, or a test's subclass)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="smsc")
    thread.start()
    server = kind(**knobs)
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        yield server
    finally:
        # Its sessions may owe answers (a retrying SMSC's resends): a bound, not a wait.
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
