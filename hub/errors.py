"""The exception tree of smshub; adapters map these to their own protocol's replies.

    HubError
    ├── ConfigError          bad or unknown configuration key or value (start-up)
    ├── SchemaError          the spool's schema is missing or older than this code
    ├── NotFound             an account, message or key that does not exist
    ├── Conflict             an account name (or similar) that already exists
    ├── AuthenticationError  missing or wrong credentials
    ├── Rejected             a permanent refusal of one request, with a code
    └── TemporaryFailure     retryable: the spool is busy or unreachable
        └── RetryLater       the other side said when (HTTP 429/503 Retry-After)

No protocol codes live here: the HTTP adapter turns Rejected into 4xx, the SMTP
adapter into 5xx, TemporaryFailure into 503 / 451, and so on.
"""

from __future__ import annotations


class HubError(Exception):
    """Root of every error smshub raises on purpose."""


class ConfigError(HubError):
    """Configuration that cannot be used; the message names the file and the key."""


class SchemaError(HubError):
    """The spool schema is absent or out of date; the message says what to run."""


class NotFound(HubError):
    pass


class Conflict(HubError):
    pass


class AuthenticationError(HubError):
    pass


class Rejected(HubError):
    """A permanent refusal: `code` is a stable machine token, the text is for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


# The public reasons a spool gives for a temporary failure (spool.faults picks one).
SPOOL_BUSY = "the spool is busy"
SPOOL_FULL = "the spool's disk is full"
SPOOL_READ_ONLY = "the spool is read-only"
SPOOL_DISK = "the spool cannot write to its disk"
SPOOL_UNREACHABLE = "the spool's database cannot be reached"
SPOOL_UNAVAILABLE = "the spool is unavailable"


class TemporaryFailure(HubError):
    """Something that may work if tried again later. The text is for the log (it may
    hold a driver's words, hosts or paths); `reason` says what is wrong in words fit for
    any client, and `retry_after` how many seconds a client should wait: a busy spool
    frees up at once, a full disk or a database being restarted takes longer."""

    def __init__(self, detail: str, reason: str = SPOOL_BUSY,
                 retry_after: int = 1) -> None:
        super().__init__(detail)
        self.reason = reason
        self.retry_after = retry_after


class RetryLater(TemporaryFailure):
    """A receiver asked us to come back after `retry_after` seconds (its Retry-After):
    the outbox waits that long instead of its own backoff."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, detail, retry_after)
