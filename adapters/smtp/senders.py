"""Allowed senders: which account a sender address belongs to (every MAIL FROM) and an
account's mail settings (every DATA), read from the spool and cached for a few seconds
(both change rarely, by `smshub account mail`; uncached, each costs a query per mail)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

from hub.mail import MailSettings
from hub.model import Account
from hub.ports import MailStore
from hub.spoolcall import SpoolThreads

K = TypeVar("K")
V = TypeVar("V")
_MAX_ENTRIES = 10_000  # a flood of made-up senders must not grow the cache unbounded


class TtlCache(Generic[K, V]):
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> tuple[bool, V | None]:
        """(found, value): a cached None (e.g. "no such sender") is found too."""
        hit = self._entries.get(key)
        if hit is None or hit[0] < self._clock():
            return False, None
        return True, hit[1]

    def put(self, key: K, value: V) -> None:
        if self._ttl <= 0:
            return
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (self._clock() + self._ttl, value)


class MailLookups:
    """Sender -> account and account -> mail settings, read through a short cache."""

    def __init__(self, runner: SpoolThreads[MailStore], ttl: float) -> None:
        self._runner = runner
        self._senders: TtlCache[str, Account | None] = TtlCache(ttl)
        self._settings: TtlCache[int, MailSettings] = TtlCache(ttl)

    async def sender_account(self, address: str) -> Account | None:
        key = address.strip().lower()
        found, account = self._senders.get(key)
        if not found:
            account = await self._runner.call(self._runner.spool.mail_sender_account, key)
            self._senders.put(key, account)
        return account

    async def settings(self, account_id: int) -> MailSettings:
        found, settings = self._settings.get(account_id)
        if not found or settings is None:
            settings = await self._runner.call(self._runner.spool.get_mail_settings,
                                               account_id)
            self._settings.put(account_id, settings)
        return settings
