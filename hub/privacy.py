"""POPIA's records: what the hub holds about a number (its messages, replies, opt-outs),
the privacy log of purges and erasures, the spool role that keeps them, and the keyed
pseudonym a number is shown by in logs and in that log."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import phonenumbers

from hub.model import Inbound, Message
from hub.numbers import mask
from hub.optouts import OptOut

# What a purged or erased text reads as: not empty, so nobody takes it for a message
# that was sent blank, and the same marker everywhere (messages, replies, payloads).
PURGED = "[purged]"
# What the retention purge rewrites, each kind in id order (ULIDs: the order they came
# in): messages' texts, replies' texts, mail subjects, reply texts in webhook bodies, and
# the push URLs (Kannel dlr-url, Clickatell callback) of finished messages, deleted.
PURGE_KINDS = ("messages", "replies", "mail_subjects", "payloads", "callbacks")
HASH_CHARS = 8  # 32 bits: enough to tell numbers apart in a log, too few to look one up


def pseudonym(e164: str, key: bytes) -> str:
    """`+27******590#1f2e3d4c`: the country code and last three digits (hub.numbers.mask)
    and a short HMAC-SHA256 of the whole number under the data directory's secret key,
    so one number's lines can be found together without the number being there."""
    digest = hmac.new(key, e164.encode(), hashlib.sha256).hexdigest()[:HASH_CHARS]
    return f"{mask(e164)}#{digest}"


def written_forms(e164: str) -> list[str]:
    """The digits a URL may hold the number by: international (after `+`, `%2B`, `00` or
    nothing) and national with its trunk prefix (`0821234567`); what erasure and export
    look for in the push URLs clients gave (a Kannel dlr-url, a Clickatell callback)."""
    international = e164.lstrip("+")
    forms = [international]
    try:
        parsed = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return forms
    national = re.sub(r"\D", "", phonenumbers.format_number(
        parsed, phonenumbers.PhoneNumberFormat.NATIONAL))
    if len(national) >= 6 and national not in international:  # else found already
        forms.append(national)
    return forms


@dataclass(frozen=True, slots=True)
class Holdings:
    """Everything held about one number: messages sent to it, its replies (inbound
    messages from it), the opt-out entries that name it, and any other rows a later
    table adds (consent, say) as plain dictionaries by table name."""

    number: str
    messages: list[Message] = field(default_factory=list)
    replies: list[Inbound] = field(default_factory=list)
    optouts: list[OptOut] = field(default_factory=list)
    other: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PrivacyEntry:
    """One row of the privacy log: a purge (no subject) or an erasure for a number."""

    id: int
    at: datetime
    action: str  # "purge" or "erase"
    subject: str | None  # the number's pseudonym; never the number
    actor: str  # "maintenance", or "cli:<user>"
    detail: dict[str, int]  # rows changed, by what they were


class PrivacyStore(Protocol):
    """The spool's privacy role: purge old texts a batch at a time, read and erase what
    is held about a number, keep the privacy log, and each account's WASPA rule."""

    def purge_texts(self, kind: str, before: datetime, after: str,
                    limit: int) -> tuple[int, str | None]:
        """Replace by PURGED the texts of the next `limit` rows of `kind` after id
        `after` older than `before`, in one short transaction: how many, and the id to
        go on after (None: that kind is done)."""
        ...

    def purge_leftovers(self, before: datetime) -> dict[str, int]:
        """Delete unfinished reply parts and idempotency answers older than `before`."""
        ...

    def record_privacy(self, at: datetime, action: str, subject: str | None, actor: str,
                       detail: dict[str, int]) -> None: ...

    def privacy_log(self, limit: int) -> list[PrivacyEntry]: ...

    def holdings(self, number: str) -> Holdings: ...

    def erase_number(self, number: str, at: datetime, subject: str, actor: str,
                     also: Mapping[str, int] | None = None) -> dict[str, int]:
        """Its unsent messages cancelled, the texts of the messages to `number` and of
        its replies replaced by PURGED, the push URLs naming it deleted, and the privacy
        log's row (counting `also`, erased elsewhere), in one transaction; opt-outs
        untouched."""
        ...

    def set_marketing_optout(self, account_name: str, rule: str) -> None: ...
