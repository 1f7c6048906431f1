"""Runs a real Hub (HTTP server, dispatcher, simulator) on its own event loop in a
background thread, so tests can drive it with ordinary blocking clients."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any, TypeVar

from hub import accounts
from hub.app import Hub
from hub.config import Config
from hub.ports import Spool

T = TypeVar("T")


class HubThread:
    def __init__(self, config: Config,
                 loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
                 ) -> None:
        self.config = config
        self.hub = Hub(config)
        # `smshub serve` runs on uvloop: tests of loop-sensitive code pass its factory.
        self.loop = loop_factory()
        self._thread = threading.Thread(target=self.loop.run_forever, name="hub", daemon=True)

    def start(self) -> HubThread:
        self._thread.start()
        self.run(self.hub.start())
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop.is_closed():
            return  # already stopped (a test may stop it before the fixture does)
        try:
            self.run(self.hub.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.hub.http_port}"

    @property
    def spool(self) -> Spool:
        assert self.hub.services is not None
        return self.hub.services.runner.spool

    def account(
        self, name: str = "acme", credits: str = "100", price: str = "0.25",
        sender_ids: tuple[str, ...] = ("ACME",),
    ) -> str:
        """Create an account and return a fresh API key for it."""
        self.spool.create_account(name, Decimal(credits), Decimal(price), list(sender_ids))
        return accounts.create_api_key(self.spool, accounts.load_secret(self.config.data_dir),
                                       name)
