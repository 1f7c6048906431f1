"""API keys that expire (hub.accounts.Credentials): the right key past its expiry is
refused saying so, a wrong key learns nothing of it, and a cached success never
outlives the expiry; a burst of password logins costs one slow hash check."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from hub.accounts import Credentials, KeyExpired, hash_password, key_digest, new_api_key
from hub.errors import AuthenticationError
from hub.model import Account
from hub.ports import ApiKeyRecord
from hub.spoolcall import SpoolThreads
from tests.factories import NOW

SECRET = b"s" * 32


class OneKey:
    """The spool as Credentials reads it: one stored key of one account."""

    def __init__(self, key_id: str, digest: bytes, expires_at: datetime | None) -> None:
        acme = Account(1, "acme", Decimal(10), Decimal(1), (), NOW)
        self.record = ApiKeyRecord(acme, digest, expires_at)
        self.key_id = key_id
        self.reads = 0

    def api_key(self, key_id: str) -> ApiKeyRecord | None:
        self.reads += 1
        return self.record if key_id == self.key_id else None


@pytest.fixture
def runners() -> Iterator[list[SpoolThreads[OneKey]]]:
    made: list[SpoolThreads[OneKey]] = []
    yield made
    for runner in made:
        runner.shutdown()


def credentials(runners: list[SpoolThreads[OneKey]], expires_at: datetime | None,
                ttl: float = 60) -> tuple[Credentials, str, OneKey]:
    made = new_api_key(SECRET)
    store = OneKey(made.key_id, made.digest, expires_at)
    runner = SpoolThreads(store, threads=1)
    runners.append(runner)
    return Credentials(runner, SECRET, ttl, clock=lambda: NOW), made.key, store  # type: ignore[arg-type]


async def test_key_past_its_expiry_is_refused_as_expired(runners: list[Any]) -> None:
    creds, key, _ = credentials(runners, NOW - timedelta(seconds=1))
    with pytest.raises(KeyExpired, match="expired at 2025-03-01T11:59:59"):
        await creds.by_api_key(key)


async def test_wrong_key_with_an_expired_id_is_told_nothing_of_the_expiry(
        runners: list[Any]) -> None:
    creds, key, _ = credentials(runners, NOW - timedelta(seconds=1))
    forged = key[:-4] + "AAAA"
    assert key_digest(SECRET, forged) != key_digest(SECRET, key)
    with pytest.raises(AuthenticationError) as refused:
        await creds.by_api_key(forged)
    assert not isinstance(refused.value, KeyExpired)


async def test_key_before_its_expiry_works_and_its_cache_entry_ends_by_then(
        runners: list[Any]) -> None:
    creds, key, store = credentials(runners, NOW + timedelta(seconds=5), ttl=60)
    assert (await creds.by_api_key(key)).name == "acme"
    assert (await creds.by_api_key(key)).name == "acme"
    assert store.reads == 1  # the second came from the cache
    (deadline, _), = creds._cache.values()
    assert deadline - time.monotonic() <= 5  # not the 60 s of the cache


async def test_key_without_expiry_is_cached_for_the_whole_ttl(runners: list[Any]) -> None:
    creds, key, _ = credentials(runners, None, ttl=60)
    await creds.by_api_key(key)
    (deadline, _), = creds._cache.values()
    assert deadline - time.monotonic() > 55


class OnePassword:
    """The spool as Credentials reads it for a password login: one account's hash."""

    def __init__(self, password: str) -> None:
        self.account = Account(1, "acme", Decimal(10), Decimal(1), (), NOW)
        self.stored = hash_password(password)
        self.reads = 0

    def password_hash(self, name: str) -> tuple[Account, str] | None:
        self.reads += 1
        return (self.account, self.stored) if name == "acme" else None


async def test_a_burst_of_password_logins_is_checked_once(runners: list[Any]) -> None:
    store = OnePassword("right-pass")
    runner = SpoolThreads(store, threads=4)
    runners.append(runner)
    creds = Credentials(runner, SECRET, 60, clock=lambda: NOW)  # type: ignore[arg-type]
    # A dialect client's 50 connections, all at once: one argon2 check answers them all.
    found = await asyncio.gather(*(creds.by_password("acme", "right-pass") for _ in range(50)))
    assert {a.id for a in found} == {1} and store.reads == 1
    wrong = await asyncio.gather(*(creds.by_password("acme", "wrong") for _ in range(5)),
                                 return_exceptions=True)
    assert all(isinstance(e, AuthenticationError) for e in wrong) and store.reads == 2
    await creds.by_password("acme", "right-pass")  # cached: no further read
    assert store.reads == 2
    with pytest.raises(AuthenticationError):  # a failure is not remembered
        await creds.by_password("acme", "wrong")
    assert store.reads == 3
