"""Account credentials: slow salted password hashes (argon2), keyed fast hashes of API
keys (HMAC-SHA256) that may expire, constant-time checks, and a short-lived cache of
verified credentials that keeps the slow hash off the hot path."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.clock import Clock, utcnow
from hub.errors import AuthenticationError
from hub.model import Account
from hub.operators import password_stamp
from hub.ports import AccountStore, Spool
from hub.spoolcall import SpoolThreads

KEY_PREFIX = "shk"
_HASHER = PasswordHasher()


class KeyExpired(AuthenticationError):
    """The right key, past its expiry: refused like a revoked one, but saying why."""


def load_secret(data_dir: Path) -> bytes:
    """The hub's HMAC key for API-key digests: `<data_dir>/secret.key`, made on first use.
    Losing it invalidates every API key (passwords are unaffected)."""
    path = data_dir / "secret.key"
    if not path.exists():
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
    return path.read_bytes()


@dataclass(frozen=True, slots=True)
class NewApiKey:
    key: str  # shown once, never stored
    key_id: str
    digest: bytes


def new_api_key(secret: bytes) -> NewApiKey:
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    return NewApiKey(key, key_id, key_digest(secret, key))


def key_digest(secret: bytes, key: str) -> bytes:
    return hmac.new(secret, key.encode(), hashlib.sha256).digest()


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_api_key(spool: Spool, secret: bytes, account_name: str,
                   expires_at: datetime | None = None) -> str:
    """Store a new key's digest for the account and return the key (to show once)."""
    made = new_api_key(secret)
    spool.add_api_key(account_name, made.key_id, made.digest, expires_at)
    return made.key


class Credentials:
    """Verifies API keys and passwords against the spool, caching successes for `ttl` s.

    The cache is keyed by an HMAC of the presented secret, so it never holds a
    plaintext credential; a revoked key or changed password stops working within `ttl`,
    an expiring key at its expiry (its cache entry never outlives it).
    """

    def __init__(self, runner: SpoolThreads[AccountStore], secret: bytes, ttl: float,
                 clock: Clock = utcnow) -> None:
        self._runner = runner
        self._secret = secret
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[bytes, tuple[float, Account]] = {}
        self._checking: dict[bytes, asyncio.Future[Account]] = {}  # passwords in argon2

    async def by_api_key(self, key: str) -> Account:
        digest = key_digest(self._secret, key)
        cached = self._cached(digest)
        if cached is not None:
            return cached
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX:
            raise AuthenticationError("malformed API key")
        record = await self._runner.call(self._runner.spool.api_key, parts[1])
        if record is None or not hmac.compare_digest(record.digest, digest):
            raise AuthenticationError("unknown or revoked API key")
        ttl = self._ttl
        if record.expires_at is not None:
            # Said only to whoever holds the key itself: the digest matched.
            left = (record.expires_at - self._clock()).total_seconds()
            if left <= 0:
                raise KeyExpired(f"API key expired at {record.expires_at.isoformat()}")
            ttl = min(ttl, left)
        return self._remember(digest, record.account, ttl)

    def cached_key(self, key: str) -> Account | None:
        """The account of an API key checked within `ttl`, without a spool read or an
        await; None if it is not in the cache (by_api_key then says)."""
        return self._cached(key_digest(self._secret, key))

    def cached_password(self, name: str, password: str) -> Account | None:
        """by_password's answer if it is in the cache, else None (never a refusal)."""
        return self._cached(self._password_digest(name, password))

    def _password_digest(self, name: str, password: str) -> bytes:
        """The cache's key for a name and password: by_password's and its lookup's."""
        return key_digest(self._secret, f"{name}\0{password}")

    async def by_password(self, name: str, password: str) -> Account:
        digest = self._password_digest(name, password)
        cached = self._cached(digest)
        if cached is not None:
            return cached
        # A dialect client opens its connections in a burst, each with the same name and
        # password: one argon2 check answers them all (50 at once took seconds of CPU,
        # at the first request and again at every expiry of the cached entry).
        checking = self._checking.get(digest)
        if checking is None:
            checking = asyncio.ensure_future(self._check_password(digest, name, password))
            self._checking[digest] = checking
            checking.add_done_callback(lambda _: self._checking.pop(digest, None))
        return await asyncio.shield(checking)

    async def sign_in(self, name: str, password: str) -> tuple[Account, str]:
        """The account and the stamp of its password (password_stamp), checked against
        the spool now, never the cache: a portal session is bound to the password it
        was opened with, so a password changed a moment ago must not open one."""
        account, stored = await self._verified(name, password)
        return account, password_stamp(stored)

    async def _check_password(self, digest: bytes, name: str, password: str) -> Account:
        account, _ = await self._verified(name, password)
        return self._remember(digest, account)

    async def _verified(self, name: str, password: str) -> tuple[Account, str]:
        found = await self._runner.call(self._runner.spool.password_hash, name)
        if found is None:
            # Spend the same time as a real check so names cannot be probed by timing.
            await self._runner.call(check_password, dummy_hash(), password)
            raise AuthenticationError("wrong account name or password")
        account, stored = found
        if not await self._runner.call(check_password, stored, password):
            raise AuthenticationError("wrong account name or password")
        return account, stored

    def _cached(self, digest: bytes) -> Account | None:
        hit = self._cache.get(digest)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            self._cache.pop(digest, None)
            return None
        return hit[1]

    def _remember(self, digest: bytes, account: Account, ttl: float | None = None) -> Account:
        ttl = self._ttl if ttl is None else ttl
        if ttl > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (time.monotonic() + ttl, account)
        return account


@functools.cache
def dummy_hash() -> str:
    """A hash no password matches, checked for an unknown name so that it costs what a
    wrong password costs. Made at its first use, not at import: an argon2 hash takes
    about 0.1 s, which every process start and every CLI command paid."""
    return _HASHER.hash(secrets.token_hex(8))
