"""Opt-out records (WASPA): the numbers an account may no longer send marketing (or any)
messages to, the operator's global block list, how each entry came to be, and each
account's opt-out settings. Intake's check itself runs in the spool's commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from hub.model import Refused

# The refusal codes every protocol reports (REST 422, XML results, FTP rows, SMTP receipts).
OPTED_OUT = "opted_out"  # on the account's own list
BLOCKED = "blocked"  # on the operator's global block list: no account may send to it


class OptOutMethod(StrEnum):
    """How a number came onto a list."""

    REPLY = "reply"  # the handset answered with an opt-out word (STOP ...)
    API = "api"  # POST /v1/optouts
    CLI = "cli"  # smshub optout add
    IMPORT = "import"  # smshub optout import FILE


class OptOutScope(StrEnum):
    """Which of an account's messages its opt-outs stop."""

    MARKETING = "marketing"  # the default: transactional messages still pass
    ALL = "all"


@dataclass(frozen=True, slots=True)
class NewOptOut:
    account_id: int | None  # None: the global block list
    number: str  # E.164
    method: OptOutMethod
    at: datetime
    reason: str | None = None
    inbound_id: str | None = None  # the inbound message that carried it


@dataclass(frozen=True, slots=True)
class OptOut:
    """A number on a list: when, how, why, and the inbound message that carried it."""

    id: int
    account_id: int | None
    number: str
    created_at: datetime
    method: OptOutMethod
    reason: str | None = None
    inbound_id: str | None = None


@dataclass(frozen=True, slots=True)
class OptOutSettings:
    """An account's opt-out settings; an account with none stored has these defaults."""

    account_id: int
    scope: OptOutScope = OptOutScope.MARKETING
    confirm: bool = False  # send the handset a confirmation SMS when it opts out


def refusal(code: str) -> Refused:
    """The Refused outcome for a recipient on a list (`OPTED_OUT` or `BLOCKED`)."""
    if code == BLOCKED:
        return Refused(BLOCKED, "the recipient's number is on the hub's block list")
    return Refused(OPTED_OUT, "the recipient has opted out of this account's messages")
