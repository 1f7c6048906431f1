"""What the hub and the libraries it runs may log: aiosmtpd and pyftpdlib quiet below
debug, and a filter on the root handlers that keeps numbers, texts, keys and passwords
out of every record at any level (POPIA); a number is shown as its keyed pseudonym."""

from __future__ import annotations

import logging
import re
import secrets

from hub.privacy import pseudonym

# Chatty per connection or per command at INFO; below debug only their warnings remain.
CHATTY = ("mail.log", "pyftpdlib")
# Records whose arguments are the client's raw lines inside an AUTH exchange or a mail
# body (aiosmtpd logs them at DEBUG): nothing of them is kept, only the format.
_RAW_LINES = {("mail.log", name) for name in (
    "_auth_interact", "challenge_auth", "smtp_AUTH", "smtp_DATA", "_authenticate",
)}
REDACTED = "[redacted]"
# Loggers whose arguments are data, never words of ours: SQLAlchemy's statement
# parameters and result rows (texts, numbers) at INFO and DEBUG. Their format stays.
_DATA_ARGS = ("sqlalchemy.",)

# A run of 8+ digits is masked as a number, except inside one of our ids: a ULID (26
# Crockford base32 characters, letters among them) may hold such a run by chance
# ("...VN24060000"), and an operator must find the id in the log as it is.
_NUMBER = re.compile(r"(?<![0-9A-Za-z])((?=[0-9]*[A-HJKMNP-TV-Z])[0-9A-HJKMNP-TV-Z]{26})"
                     r"(?![0-9A-Za-z])|(?<!\d)(\+?)(\d{8,})(?!\d)")
_SECRETS = (
    # SMTP AUTH with an initial response, FTP PASS, HTTP Authorization headers.
    re.compile(r"(?i)(\bAUTH\s+[A-Z0-9_-]+\s+)([^\s'\"\\]+)"),
    re.compile(r"(?i)(\bPASS\s+)([^\s'\"\\]+)"),
    re.compile(r"(?i)(\bauthorization['\"]?\s*[:=,]\s*['\"]?(?:[A-Za-z]+\s+)?)([^\s'\"\\]+)"),
    # Credentials in query strings and form bodies (the HTTP dialects' among them).
    re.compile(r"(?i)(\b(?:api_?key|password|passwd|pass|pwd|token|secret|session_id)=)"
               r"([^&\s'\"\\]+)"),
    # The hub's own API keys, wherever they turn up.
    re.compile(r"()(\bshk_[0-9a-f]+_[A-Za-z0-9_-]+)"),
    # Message texts in query strings and form bodies (the HTTP dialects' GET requests in
    # an access log, an upstream carrier's URL in httpx's): the text is not ours to log.
    re.compile(r"(?i)(\b(?:text|message|msg|content|body|subject|udh)=)([^&\s'\"\\]+)"),
)


def scrub(text: str) -> str:
    """`text` with secrets redacted and every run of 8+ digits masked like a number."""
    for pattern in _SECRETS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return _NUMBER.sub(_masked, text)


def _masked(found: re.Match[str]) -> str:
    if found.group(1):  # an id: as it is
        return found.group(1)
    shown = pseudonym("+" + found.group(3), _key[0])
    return shown if found.group(2) else shown[1:]


# The data directory's secret key (install sets it): the same number gets the same
# pseudonym across restarts and nodes. Until then a key of this process alone.
_key = [secrets.token_bytes(32)]


def use_key(key: bytes) -> None:
    """Name numbers under `key` from now on: the serving hub's own, once it has made it
    (a first start has no secret.key yet when logging is set up)."""
    _key[0] = key


def number(e164: str) -> str:
    """How our own log lines name a number: `+27******590#1f2e3d4c` (hub.privacy)."""
    return pseudonym(e164, _key[0])


class PrivacyFilter(logging.Filter):
    """Rewrites records in place before any handler formats them. Our own modules mask
    the numbers they know of; this also catches one inside a file name or an address,
    and everything the libraries write."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and record.name.startswith(_DATA_ARGS):
            record.msg, record.args = f"{scrub(str(record.msg))} ({REDACTED})", None
        elif (record.name, record.funcName) in _RAW_LINES:
            # Only the format survives (args are dropped, so it is never %-applied).
            record.msg, record.args = f"{record.msg} (arguments {REDACTED})", None
        else:
            record.msg, record.args = scrub(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


def install(level: str, key: bytes | None = None) -> None:
    """Quiet the chatty libraries below debug; filter every handler on the root logger;
    name numbers by their pseudonym under `key` (the data directory's secret key)."""
    if key is not None:
        use_key(key)
    if level != "debug":
        for name in CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, PrivacyFilter) for f in handler.filters):
            handler.addFilter(PrivacyFilter())
