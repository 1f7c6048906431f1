"""Idempotency keys (P12): a client's `Idempotency-Key` makes a POST safe to repeat. The
first answer is kept for the account and key for a while (24 hours by default) and
replayed to a repeat with the same body; records and rules only, the spool keeps them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from hub.errors import Rejected
from hub.model import Outcome

# How long a request holds its key while it runs: a holder that died (a node killed
# mid-request) leaves its key to a retry after this. Longer than any request may take.
LEASE = timedelta(seconds=120)
MAX_KEY_LENGTH = 255


class KeyState(StrEnum):
    NEW = "new"  # claimed now: run the request
    REPLAY = "replay"  # answered before, same request: send that answer again
    RUNNING = "running"  # the first request with this key has not been answered yet
    MISMATCH = "mismatch"  # the key was used for another request


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer as it was sent: replayed byte for byte, with its Location (the
    resource a 201 made) if it had one."""

    status: int
    body: bytes
    media_type: str
    location: str | None = None


@dataclass(frozen=True, slots=True)
class KeyClaim:
    state: KeyState
    token: str = ""  # the claimant's own mark while it holds the key (NEW)
    answer: Answer | None = None  # REPLAY


@dataclass(frozen=True, slots=True)
class KeyRequest:
    """One request's key: whose it is, which request (its fingerprint) and when."""

    account_id: int
    key: str
    fingerprint: str
    now: datetime
    window: timedelta

    @property
    def lease_until(self) -> datetime:
        return self.now + LEASE

    @property
    def expires_at(self) -> datetime:
        return self.now + self.window


@dataclass(frozen=True, slots=True)
class Seal:
    """Completes a held key in the transaction that commits the request's messages, so
    an answer is kept exactly when its messages are: `answer` makes it from intake's
    outcomes, one per submission handed to `Intake.submit`."""

    account_id: int
    key: str
    token: str
    answer: Callable[[Sequence[Outcome]], Answer]


class KeyLost(Rejected):
    """The key's hold ran out and another request took it: this one commits nothing."""

    def __init__(self) -> None:
        super().__init__("idempotency_key_in_use", "another request with this "
                         "Idempotency-Key is being processed")


def check_key(key: str) -> str:
    """The key as given; Rejected unless it is 1-255 printable ASCII characters."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise Rejected("invalid_idempotency_key", "'Idempotency-Key' must be 1 to "
                       f"{MAX_KEY_LENGTH} printable ASCII characters")
    return key


def fingerprint(method: str, path: str, content_type: str, body: bytes) -> str:
    """What makes two requests the same one: route, body and how the body is to be read."""
    digest = hashlib.sha256(f"{method} {path}\n{content_type}\n".encode())
    digest.update(body)
    return digest.hexdigest()
